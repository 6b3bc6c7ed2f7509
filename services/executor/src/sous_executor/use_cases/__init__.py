"""Use cases of the executor, one module each."""
