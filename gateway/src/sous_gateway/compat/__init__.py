"""The origin platform's web client, served unchanged: path aliases, request field aliases, response spellings.

Sous's own API stays as documented; this package only translates at the gateway, in three places:
`paths` maps the client's paths to Sous routes before routing, `requests` maps its request fields to Sous's
(every alias explicit: anything else reaches the service, which refuses unknown fields), and `responses`
adds the client's spellings next to Sous's in the answers it reads. docs/compatibility.md lists each call.
"""
