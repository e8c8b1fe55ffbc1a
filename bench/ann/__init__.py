"""bench/ann: the peers and the report of bench/ann_peers.py (make bench-ann)."""
