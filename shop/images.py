"""Product images drawn as SVG from the product's title and its category's colour: no files, no downloads."""
import hashlib
import re
from xml.sax.saxutils import escape

DEFAULT_COLOUR = "#6b8e23"
HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")

SHAPES = (
    '<circle cx="200" cy="185" r="110" fill="{colour}"/>',
    '<rect x="95" y="80" width="210" height="210" rx="36" fill="{colour}"/>',
    '<path d="M200 62 L322 292 L78 292 Z" fill="{colour}"/>',
    '<path d="M200 70 L315 185 L200 300 L85 185 Z" fill="{colour}"/>',
)

TEMPLATE = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 400" width="400" height="400" role="img">
<title>{title}</title>
<rect width="400" height="400" fill="{background}"/>
{shape}
<g font-family="system-ui, -apple-system, 'Segoe UI', sans-serif" text-anchor="middle">
<text x="200" y="205" dominant-baseline="middle" font-size="84" font-weight="700" fill="#ffffff">{initials}</text>
<text x="200" y="355" font-size="22" fill="{colour}">{label}</text>
</g>
</svg>
"""


def initials(title):
    words = [word for word in re.split(r"\W+", title) if word]
    return "".join(word[0] for word in words[:2]).upper() or "?"


def tint(colour, amount=0.85):
    """`colour` mixed with white: 0 keeps it, 1 is white."""
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return "#" + "".join(f"{round(c + (255 - c) * amount):02x}" for c in (red, green, blue))


def product_svg(title, colour):
    """The SVG image of a product: its initials on a shape picked from its title, in `colour`."""
    colour = colour if HEX_COLOUR.match(colour or "") else DEFAULT_COLOUR
    shape = SHAPES[hashlib.sha256(title.encode()).digest()[0] % len(SHAPES)]
    label = title if len(title) <= 28 else title[:27] + "…"
    return TEMPLATE.format(
        title=escape(title),
        background=tint(colour),
        shape=shape.format(colour=colour),
        initials=escape(initials(title)),
        label=escape(label),
        colour=colour,
    )
