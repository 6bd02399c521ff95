"""Instance runtimes. `RuntimeDriver` is the contract; `RuncDriver` the default.

A microVM driver (QEMU microvm) fits beside runc by implementing the same contract.
"""
