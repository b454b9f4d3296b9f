"""What an alert says, as one structure rendered for every channel.

Why a structure and not a string: the robots take different formats (WeCom and DingTalk
markdown, Feishu "post" rich text), e-mail takes HTML, and the warehouse keeps the text as
sent. Building the content once keeps every channel saying the same thing.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

LEVEL_LABELS = {"critical": "严重", "warning": "警告", "info": "恢复"}
KIND_LABELS = {"failure": "失败", "warning": "警告", "late": "逾期", "recovery": "恢复"}


@dataclass(frozen=True)
class Link:
    text: str
    url: str


@dataclass(frozen=True)
class Section:
    """A heading and its lines (each line one fact, e.g. one failed expectation)."""

    heading: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Alert:
    """One message about one (feed, period): a failure, a warning, lateness or a recovery."""

    kind: str  # failure | warning | late | recovery
    level: str  # critical | warning | info
    feed: str
    period: str
    signature: str  # what failed; with feed and period, the dedup key
    title: str
    facts: tuple[tuple[str, str], ...] = ()
    sections: tuple[Section, ...] = ()
    links: tuple[Link, ...] = ()
    batch_id: str | None = None
    dag_id: str | None = None
    dag_run_id: str | None = None
    task_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def heading(self) -> str:
        return f"【{LEVEL_LABELS.get(self.level, self.level)}】{self.title}"

    def markdown(self, *, max_bytes: int | None = None) -> str:
        """Markdown that WeCom and DingTalk robots render (headings, lists, bold, links).

        ``max_bytes`` cuts the sections (never the facts or links) to fit a robot's limit.
        """
        head = [f"### {self.heading}", ""]
        head += [f"- **{label}**：{value}" for label, value in self.facts]
        tail = []
        if self.links:
            tail = ["", " · ".join(f"[{link.text}]({link.url})" for link in self.links)]
        body: list[str] = []
        for section in self.sections:
            body += ["", f"**{section.heading}**"]
            body += [f"{i}. {line}" for i, line in enumerate(section.lines, 1)]
        text = "\n".join([*head, *body, *tail])
        if max_bytes is None or len(text.encode()) <= max_bytes:
            return text
        note = "", "……（内容过长已截断，详见校验报告）"
        budget = max_bytes - len("\n".join([*head, *note, *tail]).encode()) - 1
        kept: list[str] = []
        for line in body:
            if len("\n".join([*kept, line]).encode()) > budget:
                break
            kept.append(line)
        return "\n".join([*head, *kept, *note, *tail])

    def text(self) -> str:
        """Plain text (logs, the demo preview, the e-mail's text part)."""
        lines = [self.heading]
        lines += [f"{label}：{value}" for label, value in self.facts]
        for section in self.sections:
            lines += [f"{section.heading}："]
            lines += [f"  {i}. {line}" for i, line in enumerate(section.lines, 1)]
        lines += [f"{link.text}：{link.url}" for link in self.links]
        return "\n".join(lines)

    def html(self) -> str:
        """The e-mail body."""
        esc = html.escape
        colour = {"critical": "#c0392b", "warning": "#d68910", "info": "#1e8449"}.get(
            self.level, "#333"
        )
        parts = [f'<h3 style="color:{colour}">{esc(self.heading)}</h3>', "<table>"]
        parts += [
            f"<tr><th align='left'>{esc(label)}</th><td>{esc(value)}</td></tr>"
            for label, value in self.facts
        ]
        parts.append("</table>")
        for section in self.sections:
            parts.append(f"<p><b>{esc(section.heading)}</b></p><ol>")
            parts += [f"<li>{esc(line)}</li>" for line in section.lines]
            parts.append("</ol>")
        if self.links:
            parts.append(
                "<p>"
                + " · ".join(f'<a href="{esc(x.url)}">{esc(x.text)}</a>' for x in self.links)
                + "</p>"
            )
        return "\n".join(parts)

    def feishu_post(self) -> dict[str, Any]:
        """Feishu/Lark "post" rich text: paragraphs of text and link elements."""
        rows: list[list[dict[str, str]]] = [
            [{"tag": "text", "text": f"{label}：{value}"}] for label, value in self.facts
        ]
        for section in self.sections:
            rows.append([{"tag": "text", "text": f"{section.heading}："}])
            rows += [
                [{"tag": "text", "text": f"{i}. {line}"}] for i, line in enumerate(section.lines, 1)
            ]
        if self.links:
            rows.append([{"tag": "a", "text": x.text, "href": x.url} for x in self.links])
        return {"zh_cn": {"title": self.heading, "content": rows}}

    def feishu_card(self) -> dict[str, Any]:
        """Feishu/Lark "interactive" card: coloured header, lark_md body, link buttons."""
        body = self.markdown().split("\n", 2)[-1]  # the heading goes to the card header
        for link in self.links:  # links become buttons
            body = body.replace(f"[{link.text}]({link.url})", "").strip(" ·\n")
        elements: list[dict[str, Any]] = [
            {"tag": "div", "text": {"tag": "lark_md", "content": body}}
        ]
        if self.links:
            elements.append(
                {
                    "tag": "action",
                    "actions": [
                        {
                            "tag": "button",
                            "text": {"tag": "plain_text", "content": x.text},
                            "url": x.url,
                            "type": "default",
                        }
                        for x in self.links
                    ],
                }
            )
        colour = {"critical": "red", "warning": "orange", "info": "green"}.get(self.level, "blue")
        return {
            "config": {"wide_screen_mode": True},
            "header": {"title": {"tag": "plain_text", "content": self.heading}, "template": colour},
            "elements": elements,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "level": self.level,
            "feed": self.feed,
            "period": self.period,
            "signature": self.signature,
            "title": self.heading,
            "facts": [list(f) for f in self.facts],
            "sections": [{"heading": s.heading, "lines": list(s.lines)} for s in self.sections],
            "links": [{"text": x.text, "url": x.url} for x in self.links],
            "batch_id": self.batch_id,
            "dag_id": self.dag_id,
            "dag_run_id": self.dag_run_id,
            "task_id": self.task_id,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)
