"""Code that runs inside the Rasa server process (bot environment, Python 3.10).

Rasa's registered extension points live in this package's modules
(components, tracker store, event broker, lock store, channels); the runtime
patches of Rasa live in bot/patches/.

This is the one place the patches are installed: Rasa imports this package
for config.yml's components, endpoints.yml's stores and credentials.yml's
channels, in every process it runs (``rasa run``, ``rasa test``, ``rasa
shell``, the NLU worker, an ``Agent.load`` in a test), before any of them is
used. ``BOT_PATCHES`` selects them; on a Rasa other than the pinned one none
is installed (bot/patches/__init__.py).
"""

from bot import patches

patches.install()
