"""MANAGED-mode networking of one zone: the plan (a pure function of what the CLC allocated
and the security groups), its rendering as iptables and dnsmasq input, and the drivers that
record it (`plan`) or build it on the host (`linux`)."""
