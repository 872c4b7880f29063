"""What every stage's process needs first: typed params, output paths, the command line and its
one-line errors, the CPU math settings. Imports no other wing; every stage and wing may import it."""
