"""What a winner must show (held-out seeds, trust checks, transfer) and the files it leaves as."""
