"""The node controller: the instances on one host (libvirt domains, instance-store disks, the
image cache, console logs), behind the internal API of services/messages/node.py.

Entry points:
  uvicorn --factory nc.app:create_app      one node (real mode, or one simulated node)
  uvicorn --factory nc.multi:create_app    NC_SIMULATED_NODES simulated nodes under /node-1 … /node-N
"""
