"""The Program: the compiled artifact every backend runs, and the protocol backends implement."""
