"""``x86lab web build``: assemble the deployable static web demo.

One call does it all::

    from web.build.assemble import build_site
    manifest = build_site(kernel="debian", out=Path("web/out"))

The result is a plain folder any static host (Vercel, a CDN, ``x86lab web serve``) can
publish: the Next.js export of ``web/site``, the emulator and the OS under ``os/`` with
content-hashed names, ``x86lab-manifest.json`` telling the page what to load, and
``vercel.json`` with the caching, type, Range and CORS headers.
"""
