"""The speed-ups of a build: what makes it faster and never changes what it builds.

`base.Speedups` names every hook the engine calls (the COPY op, the RUN steps, the executor);
`base.NullSpeedups` does nothing and is the reference behaviour: a build with it gives the
same images, keys and reports as with `active.ActiveSpeedups`, which assembles the real
ones (quick COPY keys from the context walkers' listing, snapshots written ahead in a forked
child: copykeys.py; the RUN after a missed COPY run while that layer is packed:
runahead.py). `active.speedups_for` picks one from the BuildOptions fields the CLI sets.

Light on purpose: importing the package imports none of its modules.
"""
