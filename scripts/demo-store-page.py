#!/usr/bin/env python3
"""Write the demo's sample store admin page from sealed customer records.

Usage: demo-store-page.py OUT_DIR BRIDGE_URL SEALED_JSON...

Each SEALED_JSON is the output of `vbzkey seal-customer`, with an extra "name" and "order"
field added by the demo. Sealed values go into data-vbzkey-record / data-vbzkey-context
attributes, exactly as a real store's admin page would render them (docs/SCHEMA.md).
"""
import html
import json
import sys

out_dir, bridge, files = sys.argv[1], sys.argv[2], sys.argv[3:]


def sealed(rec, field, kind=""):
    f = rec["sealed"].get(field)
    if not f:
        return "<td>—</td>"
    kind_attr = f' data-vbzkey-kind="{kind}"' if kind else ""
    return (
        f'<td><span class="sealed" data-vbzkey-record="{html.escape(f["record"])}" '
        f'data-vbzkey-context="{html.escape(f["context"])}"{kind_attr}>[sealed]</span></td>'
    )


rows = []
for path in files:
    with open(path) as fh:
        r = json.load(fh)
    c = r["clear"]
    rows.append(
        "<tr>"
        f"<td>{html.escape(r['order'])}</td><td>{html.escape(r['name'])}</td>"
        f"<td>{html.escape((c['card_brand'] or '').title())} …{html.escape(c['card_last4'] or '')}</td>"
        + sealed(r, "card_number", "card")
        + f"<td>{html.escape(c['card_expiry'] or '')}</td>"
        + sealed(r, "address")
        + f"<td>{html.escape(c['postal_code'] or '')} {html.escape(c['country'] or '')}</td>"
        + sealed(r, "phone")
        + f"<td>{html.escape(c['email'] or '')}</td>"
        "</tr>"
    )

page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Demo store — orders</title>
<style>
  body {{ font: 15px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }}
  h1 {{ font-size: 1.4em; }}
  table {{ border-collapse: collapse; width: 100%; }}
  th, td {{ border-bottom: 1px solid #ddd; padding: .45em .6em; text-align: left; vertical-align: top; }}
  th {{ background: #f4f4f4; }}
  .sealed {{ color: #888; font-family: ui-monospace, monospace; white-space: pre-line; }}
  .vbzkey-open {{ color: #0a5; }}
  .vbzkey-error {{ color: #c00; }}
  #vbzkey-bar {{ margin: 1em 0; padding: .6em .8em; background: #eef4ff; border-radius: 6px; }}
  #vbzkey-bar form, #vbzkey-bar button, #vbzkey-bar a {{ display: inline; margin-left: .8em; }}
  .vbzkey-reveal {{ margin-left: .5em; font-size: .8em; }}
</style>
</head>
<body>
<h1>Demo store — recent orders</h1>
<p>Card numbers, addresses and phone numbers are sealed in the database; the rest is clear.
Your vbzkey dongle opens them on this computer only.</p>
<div id="vbzkey-bar">Looking for the key bridge…</div>
<table>
<thead><tr><th>Order</th><th>Customer</th><th>Card</th><th>Card number</th><th>Expiry</th>
<th>Address</th><th>Postcode</th><th>Phone</th><th>Email</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody>
</table>
<script src="vbzkey.js"></script>
<script>window.vbzkey = VbzKey.start({{ bridge: {json.dumps(bridge)}, bar: "#vbzkey-bar" }});</script>
</body>
</html>
"""
with open(f"{out_dir}/index.html", "w") as fh:
    fh.write(page)
