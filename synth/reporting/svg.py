"""A matplotlib figure as SVG to inline in the HTML report: text kept as text, ids made unique per figure,
and the figure's marks (figures.py) added as classes, data attributes and tooltips for the page's script.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import matplotlib
from matplotlib.figure import Figure

from synth.reporting.figures import Marks

SVG_NS, XLINK_NS = "http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"
ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", XLINK_NS)
HREF = f"{{{XLINK_NS}}}href"


def _tag(name: str) -> str:
    return f"{{{SVG_NS}}}{name}"


def _add_title(el: ET.Element, text: str) -> None:
    ET.SubElement(el, _tag("title")).text = text
    el.insert(0, el[-1])  # a tooltip is the element's first child


def _drawn(group: ET.Element) -> list[ET.Element]:
    """What a gid'd artist drew, one element per data point: markers (<use>) or else paths, outside <defs>."""
    defs = {id(d) for sub in group.iter(_tag("defs")) for d in sub.iter()}
    uses = [e for e in group.iter(_tag("use"))]
    return uses or [e for e in group.iter(_tag("path")) if id(e) not in defs]


def inline_svg(fig: Figure, marks: Marks, name: str) -> str:
    """The figure as an <svg> element (no XML prolog, no metadata, no namespace URLs); `name` prefixes
    its ids so that several figures share one page, and is the svg's aria label."""
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": name}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    root = ET.fromstring(buf.getvalue())
    for meta in root.findall(_tag("metadata")):
        root.remove(meta)
    for el in list(root.iter()):  # a copy: titles are added on the way
        gid = el.get("id")
        if gid is not None:
            el.set("id", f"{name}-{gid}")
            mark = marks.get(gid)
            if mark:
                if "class" in mark:
                    el.set("class", mark["class"])
                for key, value in mark.get("data", {}).items():
                    el.set(f"data-{key}", str(value))
                if "title" in mark:
                    _add_title(el, mark["title"])
                for drawn, tip in zip(_drawn(el), mark.get("titles", ())):
                    _add_title(drawn, tip)
        for attr in ("clip-path", "mask", "filter"):
            if el.get(attr, "").startswith("url(#"):
                el.set(attr, el.get(attr).replace("url(#", f"url(#{name}-", 1))
        if el.get(HREF, "").startswith("#"):
            el.set(HREF, f"#{name}-{el.get(HREF)[1:]}")
    # 1 SVG unit is 1/72 in: the figure's inches * 72 in CSS pixels, at 1 px per unit
    root.set("width", root.get("width").removesuffix("pt"))
    root.set("height", root.get("height").removesuffix("pt"))
    root.set("role", "img")
    root.set("aria-label", name)
    text = ET.tostring(root, encoding="unicode")
    return text.replace(f' xmlns="{SVG_NS}"', "", 1).replace(f' xmlns:xlink="{XLINK_NS}"', "", 1)
