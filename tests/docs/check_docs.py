#!/usr/bin/python3
"""The documentation holds together: links resolve, command examples parse.

Reads README.md, docs/*.md and web/widget/README.md under --root and checks:

- every relative link, [text](target) or ![alt](target): the file or folder
  exists (relative to the Markdown file), and a #anchor names a heading of
  the target file under GitHub's slug rules (lower case; punctuation other
  than '-' and '_' dropped; spaces become '-'; a repeated heading gets -1,
  -2, ...). Links with a scheme (https:, mailto:) are not followed.
- every `igscope ...` or `build/igscope ...` line of a fenced code block
  (continued by a trailing backslash, after a leading `$ `, environment
  assignments or `&&`): its subcommand is one that `igscope --help` lists,
  and every --option it uses appears in `igscope SUBCOMMAND --help`. Option
  names are read from CLI11's help text, so a renamed or removed option
  breaks the example that still uses it. Optional-bracket notation such as
  `[--json]` is read as the option inside the brackets.

Exits 1 with one line per broken link or example, else 0; prints how many
links and examples it checked. Standard library only.
"""
import argparse
import os
import re
import shlex
import subprocess
import sys

LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^\s*(```+|~~~+)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
OPTION = re.compile(r"(?<![\w-])(--[A-Za-z0-9][\w-]*)")


def doc_files(root):
    files = [os.path.join(root, "README.md")]
    docs = os.path.join(root, "docs")
    if os.path.isdir(docs):
        files += sorted(os.path.join(docs, f) for f in os.listdir(docs) if f.endswith(".md"))
    widget = os.path.join(root, "web", "widget", "README.md")
    if os.path.exists(widget):
        files.append(widget)
    return files


def split_fences(text):
    """(prose lines with their numbers, code blocks as lists of (number, line))."""
    prose, blocks, block = [], [], None
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if block is None and m:
            fence, block = m.group(1), []
            continue
        if block is not None:
            if line.strip().startswith(fence[0] * len(fence)) and line.strip().strip(fence[0]) == "":
                blocks.append(block)
                block = None
            else:
                block.append((number, line))
            continue
        prose.append((number, line))
    if block is not None:
        blocks.append(block)
    return prose, blocks


def strip_inline_code(line):
    return re.sub(r"(`+)(.+?)\1", "", line)


def heading_text(raw):
    """The heading as GitHub renders it to text: code spans as their text, links as
    their text, HTML tags and emphasis marks dropped outside code spans."""
    out = []
    for i, part in enumerate(re.split(r"(`+[^`]*?`+)", raw)):
        if i % 2:
            out.append(part.strip("`"))
            continue
        part = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", part)
        part = re.sub(r"<[^>]+>", "", part)
        out.append(part.replace("*", ""))
    return "".join(out)


def slug(text):
    """GitHub's heading anchor (github-slugger)."""
    text = heading_text(text).strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


_anchor_cache = {}


def anchors(path):
    if path not in _anchor_cache:
        with open(path, encoding="utf-8") as f:
            prose, _ = split_fences(f.read())
        seen, result = {}, set()
        for _, line in prose:
            m = HEADING.match(line)
            if not m:
                continue
            base = slug(m.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            result.add(base if n == 0 else f"{base}-{n}")
        _anchor_cache[path] = result
    return _anchor_cache[path]


def check_links(path, root, errors):
    with open(path, encoding="utf-8") as f:
        prose, _ = split_fences(f.read())
    count = 0
    rel = os.path.relpath(path, root)
    for number, line in prose:
        for m in LINK.finditer(strip_inline_code(line)):
            target = m.group(1)
            if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", target) or target.startswith("//"):
                continue  # a URL with a scheme: not a file of the repository
            count += 1
            file_part, _, anchor = target.partition("#")
            dest = path if file_part == "" else os.path.normpath(os.path.join(os.path.dirname(path), file_part))
            where = f"{rel}:{number}: link '{target}'"
            if not os.path.realpath(dest).startswith(os.path.realpath(root) + os.sep) and dest != path:
                errors.append(f"{where} points outside the repository")
                continue
            if not os.path.exists(dest):
                errors.append(f"{where}: no such file '{os.path.relpath(dest, root)}'")
                continue
            if anchor:
                if not dest.endswith(".md") or os.path.isdir(dest):
                    errors.append(f"{where}: an #anchor into a file that is not Markdown")
                elif anchor not in anchors(dest):
                    errors.append(f"{where}: '{os.path.relpath(dest, root)}' has no heading with the anchor '#{anchor}'")
    return count


def command_lines(block):
    """Logical lines of a code block (backslash continuations joined), with their first line number."""
    out, buf, start = [], "", None
    for number, line in block:
        if start is None:
            start = number
        stripped = line.rstrip()
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        out.append((start, buf + stripped))
        buf, start = "", None
    if buf:
        out.append((start, buf))
    return out


def igscope_invocations(line):
    """The argument lists of every igscope invocation on one shell line."""
    line = line.replace("[", " ").replace("]", " ")
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError:
        return None
    found, current = [], None
    for tok in tokens:
        if tok in ("&&", "||", ";", "|"):
            current = None
            continue
        if current is None:
            if tok == "$" or re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", tok):
                continue  # a prompt, or an environment assignment before the command
            if tok in ("igscope", "build/igscope") or tok.endswith("/build/igscope"):
                current = []
                found.append(current)
            else:
                current = False  # another program: skip to the next command on the line
            continue
        if current is not False:
            current.append(tok)
    return found


def help_text(igscope, args):
    r = subprocess.run([igscope] + args, capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def subcommands(igscope):
    rc, text = help_text(igscope, ["--help"])
    if rc != 0:
        sys.exit(f"check_docs: '{igscope} --help' failed (status {rc}):\n{text}")
    names, in_section = set(), False
    for line in text.splitlines():
        if line.strip().lower().startswith("subcommands"):
            in_section = True
            continue
        if in_section:
            m = re.match(r"^\s+([a-z][\w-]*)\b", line)
            if m:
                names.add(m.group(1))
            elif line.strip():
                in_section = False
    if not names:
        sys.exit(f"check_docs: found no subcommands in '{igscope} --help':\n{text}")
    return names


_option_cache = {}


def options_of(igscope, sub):
    if sub not in _option_cache:
        rc, text = help_text(igscope, [sub, "--help"])
        _option_cache[sub] = set(OPTION.findall(text)) if rc == 0 else None
    return _option_cache[sub]


def check_examples(path, root, igscope, known, top, errors):
    with open(path, encoding="utf-8") as f:
        _, blocks = split_fences(f.read())
    count = 0
    rel = os.path.relpath(path, root)
    for block in blocks:
        for number, line in command_lines(block):
            stripped = line.lstrip()
            if not re.match(r"^(\$\s+)?([A-Za-z_][A-Za-z0-9_]*=\S*\s+)*(build/)?igscope(\s|$)", stripped):
                continue
            calls = igscope_invocations(stripped)
            where = f"{rel}:{number}: example '{' '.join(stripped.split())[:90]}'"
            if calls is None:
                errors.append(f"{where}: cannot be split into shell words")
                continue
            for args in calls:
                count += 1
                if not args or args[0].startswith("-"):
                    # Only the top-level options (--help) may come without a subcommand.
                    if not args or any(t.split("=", 1)[0] not in top for t in args if t.startswith("-")):
                        errors.append(f"{where}: no subcommand (igscope has: {', '.join(sorted(known))})")
                    continue
                sub = args[0]
                if sub not in known:
                    errors.append(f"{where}: 'igscope {sub}' is not a subcommand (igscope has: {', '.join(sorted(known))})")
                    continue
                valid = options_of(igscope, sub)
                if valid is None:
                    errors.append(f"{where}: 'igscope {sub} --help' failed")
                    continue
                for tok in args[1:]:
                    if not tok.startswith("--") or tok == "--":
                        continue
                    name = tok.split("=", 1)[0]
                    if name not in valid:
                        errors.append(f"{where}: 'igscope {sub}' has no option {name}")
    return count


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--igscope", required=True, help="the igscope binary")
    ap.add_argument("--root", required=True, help="the repository root")
    args = ap.parse_args()
    root = os.path.abspath(args.root)
    igscope = os.path.abspath(args.igscope)
    known = subcommands(igscope)
    top = set(OPTION.findall(help_text(igscope, ["--help"])[1])) | {"-h"}
    errors, links, examples = [], 0, 0
    files = doc_files(root)
    for path in files:
        links += check_links(path, root, errors)
        examples += check_examples(path, root, igscope, known, top, errors)
    for e in errors:
        print(f"BROKEN {e}")
    print(f"check_docs: {len(files)} files, {links} relative links, {examples} igscope examples checked; "
          f"{len(errors)} broken")
    if examples == 0 or links == 0:
        print("check_docs: expected at least one link and one example")
        return 1
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
