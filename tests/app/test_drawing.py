"""Pictures made while a page runs, shown in their places once it has run
(cxlab.ui.drawing.pictures, around every page in app.py), drawn by vl-convert."""

from __future__ import annotations

import base64
import re

from streamlit.testing.v1 import AppTest

from tests.app.conftest import TIMEOUT, drawn


def page() -> None:
    """Text, a chart, text, a chart vl-convert refuses, text, a chart."""
    import streamlit as st

    from cxlab.ui import drawing

    def bar(title: str) -> dict:
        return {
            "title": title,
            "data": {"values": [{"a": 1}, {"a": 3}]},
            "mark": "bar",
            "encoding": {"x": {"field": "a", "type": "quantitative"}},
        }

    with drawing.pictures():
        st.markdown("before")
        drawing.draw(bar("First"))
        st.markdown("between")
        drawing.draw({**bar("Refused"), "mark": "no such mark"})
        st.markdown("after")
        drawing.draw(bar("Last"), share=0.5)


def shown_in_order(at: AppTest) -> list[str]:
    """The main area's elements, top to bottom: text, alt text, or a warning."""
    out = []
    for node in at.main.children.values():
        if node.type == "image":
            out += [image.alt for image in node.proto.imgs]
        else:
            out.append(f"{node.type}: {node.value}")
    return out


def test_pictures_are_shown_in_their_places_and_a_refused_one_says_so() -> None:
    at = AppTest.from_function(page, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert shown_in_order(at) == [
        "markdown: before",
        "First",
        "markdown: between",
        "warning: The chart “Refused” could not be drawn; the server's log says why.",
        "markdown: after",
        "Last",
    ]
    first, last = drawn(at)
    assert (first["title"], last["title"]) == ("First", "Last")
    svgs = [
        base64.b64decode(i.proto.imgs[0].url.partition(",")[2]) for i in at.get("image")
    ]
    assert [re.match(rb'<svg[^>]* width="(\d+)"', svg)[1] for svg in svgs] == [
        b"980",
        b"490",  # half the page's width
    ]
