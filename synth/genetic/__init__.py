"""Genetic children: the proposer, the operators on programs, the tuner of a structure's constants."""
