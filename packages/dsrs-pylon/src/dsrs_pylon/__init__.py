"""dsrs-pylon: Pylon: the Nostr NIP-90 compute swarm, paid in msats, with local and hybrid modes, for dsrs."""

__version__ = "0.1.0"
