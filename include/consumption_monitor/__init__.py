"""Consumption-plan monitoring platform for 攀枝花市西区."""

__version__ = "0.1.0"
