"""How probes run: local host now; daemonset, ssh and netns later."""
