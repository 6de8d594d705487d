"""``fedmq conformance``: a short federation against any worker; which protocol rules it kept."""
