"""scenebase: a self-hostable data platform for perception data.

``import scenebase`` is cheap: it opens no database and starts no thread.
"""

__version__ = "0.1.0"

#: The oldest client version the server accepts (``GET /status`` reports it).
SUPPORTED_CLIENT_VERSION = "0.1.0"
