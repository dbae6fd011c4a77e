"""The command line's commands, by job; cli.py assembles them into one typer app."""
