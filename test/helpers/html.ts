/** HTML pages read as a browser would: Python's standard html.parser (tolerant, no dependency) → tables, links, headings. */
import { spawnSync } from 'node:child_process';

export interface HtmlPage {
  title: string;
  h1: string[];
  /** Each table: rows of cell texts (th and td), header row first. */
  tables: string[][][];
  links: Array<{ href: string; text: string }>;
  text: string;
}

const SCRIPT = `
import json, sys
from html.parser import HTMLParser

class P(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out = {"title": "", "h1": [], "tables": [], "links": [], "text": ""}
        self.stack = []
        self.cell = None
        self.link = None
        self.head = None
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table": self.out["tables"].append([])
        elif tag == "tr" and self.out["tables"]: self.out["tables"][-1].append([])
        elif tag in ("td", "th"): self.cell = ""
        elif tag == "a": self.link = {"href": a.get("href") or "", "text": ""}
        elif tag in ("title", "h1"): self.head = (tag, "")
    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            if self.out["tables"] and self.out["tables"][-1]: self.out["tables"][-1][-1].append(self.cell.strip())
            self.cell = None
        elif tag == "a" and self.link is not None:
            self.link["text"] = self.link["text"].strip(); self.out["links"].append(self.link); self.link = None
        elif self.head and tag == self.head[0]:
            if tag == "title": self.out["title"] = self.head[1].strip()
            else: self.out["h1"].append(self.head[1].strip())
            self.head = None
    def handle_data(self, d):
        if self.cell is not None: self.cell += d
        if self.link is not None: self.link["text"] += d
        if self.head: self.head = (self.head[0], self.head[1] + d)
        self.out["text"] += d

p = P(); p.feed(sys.stdin.read()); p.close()
print(json.dumps(p.out))
`;

export function parseHtml(html: string): HtmlPage {
  const r = spawnSync('/usr/bin/python3', ['-c', SCRIPT], { input: html, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`html parse failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as HtmlPage;
}
