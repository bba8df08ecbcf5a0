"""locksmith: pretrain a robot prior once, cut a small local key for every new robot, and
measure with numbers how many demonstrations the prior saves."""

__version__ = "0.1.0"
