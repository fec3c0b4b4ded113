"""The node agent: collectors of node facts and, later, active tests."""
