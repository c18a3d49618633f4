"""ekklesia's pure protocol core.

Everything in this package is synchronous and free of IO: no clock, no sockets, no
files, no global randomness. Time and entropy arrive as inputs. The node shell
(`node/`) and the simulator (`simulations/`) drive the very same code.
"""
