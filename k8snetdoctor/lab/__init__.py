"""The network-namespace lab (multi-node cluster dataplanes on one host)."""
