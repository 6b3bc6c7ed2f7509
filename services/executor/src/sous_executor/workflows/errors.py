"""What a workflow run's driver and its runner tell each other by raising."""


class RunLeaseLost(Exception):
    """Another instance owns the run now; this one stops without writing."""
