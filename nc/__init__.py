"""The node controller: the instances on one host (domains, instance-store disks, the image
cache, console logs), behind the internal API of services/messages/node.py.

Entry points:
  uvicorn --factory nc.app:create_app      one node (real mode, or one simulated node)
  uvicorn --factory nc.multi:create_app    NC_SIMULATED_NODES simulated nodes under /node-1 … /node-N

Layout: app.py/multi.py (HTTP: routes and the one error translation) → process.py (every node
of the process: one database, launch threads, recorder, the describe of all nodes, the watch
pass) → node.py (one node wired) → instances.py (state changes, under one lock) →
booter.py (the launch steps) → hypervisor.py (Protocol and factory: libvirt_hypervisor.py
for test:/// and qemu:///, fake_hypervisor.py for fake://). events.py pushes state changes to
the CC that subscribed; reconcile.py makes records and domains agree.
"""
