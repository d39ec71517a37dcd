"""The ``refersplat`` command line: argument parsing, printing and exit codes; no algorithm."""
