"""The network-namespace lab (multi-node cluster dataplanes on one host); API: k8snetdoctor.lab.lab."""
