"""The evolutionary loop: the scheduler, a candidate's statuses, the fidelity cascade, fitness, a run end to end."""
