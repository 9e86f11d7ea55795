"""A CDN-like static file server for development and tests (Range, CORS, caching).

``python -m http.server`` ignores Range requests, and v86's asynchronous disk images
hang on it; this server answers them the way a CDN does.
"""
