"""The EC2 actions, one module per resource family. Importing a module registers its actions;
`clc.app` imports them all. This package itself imports nothing, so behaviour modules may use
`clc.api.registry` without pulling every action in (and into an import cycle)."""
