"""Many hosts under one control plane: the hosts table, joining, placement."""
