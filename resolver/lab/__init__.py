"""The lab: a small DNS tree served on 127.53.x.y by our own authoritative servers."""
