"""Real mode on one machine: the tiny default guest and the seed's two hosts as network
namespaces (`eucasim lab up`)."""
