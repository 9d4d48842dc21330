#!/usr/bin/env python3
"""Writes vmbus(1) in roff from ArgumentParser's help description.

Usage: vmbus --experimental-dump-help | Scripts/vmbus-man.py VERSION > vmbus.1

One page for the whole tool: the root command, then every subcommand (nested ones too) as
a section of its own with its options, so `man vmbus` shows everything `--help` does.
ArgumentParser's own generate-manual plugin is not used: it rebuilds the product in its own
configuration, a second release build of the whole package, where this reads the binary
the package script already built.
"""
import datetime
import json
import sys


ASCII_ONLY = {"\u00a7": "section ", "\u00b5": "u", "\u2026": "...", "\u21c4": "<->"}


def roff(text):
    """Text safe in roff: backslashes doubled, lines not starting with a control character."""
    text = text.replace("\\", "\\e")
    # groff reads bytes, not UTF-8 (man-db converts; groff alone does not): \[uXXXX] works in
    # both. These few have no glyph on an ASCII terminal: spelled out instead.
    text = "".join(ASCII_ONLY.get(c, c) for c in text)
    text = "".join(c if ord(c) < 128 else "\\[u{:04X}]".format(ord(c)) for c in text)
    lines = []
    for line in text.split("\n"):
        if line.startswith((".", "'")):
            line = "\\&" + line
        lines.append(line)
    return "\n".join(lines)


def paragraphs(text):
    """Discussion text: a blank line starts a new paragraph."""
    out = []
    for block in text.strip().split("\n\n"):
        out.append(".PP\n" + roff(block.strip()))
    return "\n".join(out)


def synopsis_name(argument):
    names = argument.get("names") or []
    preferred = argument.get("preferredName") or (names[0] if names else None)
    value = argument.get("valueName", "")
    if argument["kind"] == "positional":
        return "<" + value + ">"
    dash = "-" if preferred["kind"] == "short" else "--"
    flag = dash + preferred["name"]
    if argument["kind"] == "option":
        flag += " <" + value + ">"
    return flag


def option_lines(arguments):
    out = []
    for argument in arguments:
        if not argument.get("shouldDisplay", True):
            continue
        names = argument.get("names") or []
        if argument["kind"] == "positional":
            label = "<" + argument.get("valueName", "") + ">"
        else:
            spelled = [("-" if n["kind"] == "short" else "--") + n["name"] for n in names]
            label = ", ".join(spelled)
            if argument["kind"] == "option":
                label += " <" + argument.get("valueName", "") + ">"
        out.append(".TP\n\\fB" + roff(label) + "\\fR")
        text = argument.get("abstract", "")
        if argument.get("defaultValue") not in (None, ""):
            text += " (default: " + argument["defaultValue"] + ")"
        if argument.get("isRepeating"):
            text += " (repeatable)"
        out.append(roff(text) if text else "")
        if argument.get("discussion"):
            discussion = argument["discussion"]
            if isinstance(discussion, str):
                out.append(".IP\n" + roff(discussion))
    return out


def command_section(command, path):
    out = [".SH " + roff(" ".join(path).upper()), ".PP", "\\fB" + roff(" ".join(path)) + "\\fR"]
    shown = [a for a in command.get("arguments", []) if a.get("shouldDisplay", True)]
    usage = " ".join("[" + synopsis_name(a) + "]" if a.get("isOptional") else synopsis_name(a) for a in shown)
    if usage:
        out.append(roff(usage))
    if command.get("abstract"):
        out.append(".PP\n" + roff(command["abstract"]))
    if command.get("discussion"):
        out.append(paragraphs(command["discussion"]))
    lines = option_lines(command.get("arguments", []))
    if lines:
        out.append(".PP\nOptions:")
        out.extend(lines)
    for sub in command.get("subcommands", []):
        if sub.get("shouldDisplay", True) and sub["commandName"] != "help":
            out.extend(command_section(sub, path + [sub["commandName"]]))
    return out


def main():
    version = sys.argv[1] if len(sys.argv) > 1 else ""
    root = json.load(sys.stdin)["command"]
    name = root["commandName"]
    date = datetime.date.today().isoformat()
    out = [
        '.TH {} 1 "{}" "{} {}" "User Commands"'.format(name.upper(), date, name, version),
        ".SH NAME",
        roff(name) + " \\- " + roff(root.get("abstract", "")),
        ".SH SYNOPSIS",
        "\\fB" + name + "\\fR \\fIsubcommand\\fR [\\fIoptions\\fR]",
        ".SH DESCRIPTION",
        paragraphs(root.get("discussion", "")),
        ".SH SUBCOMMANDS",
    ]
    for sub in root.get("subcommands", []):
        if sub.get("shouldDisplay", True) and sub["commandName"] != "help":
            out.append(".TP\n\\fB" + sub["commandName"] + "\\fR\n" + roff(sub.get("abstract", "")))
    out.extend(option_lines(root.get("arguments", [])) and [".SH OPTIONS"] + option_lines(root.get("arguments", [])))
    for sub in root.get("subcommands", []):
        if sub.get("shouldDisplay", True) and sub["commandName"] != "help":
            out.extend(command_section(sub, [name, sub["commandName"]]))
    out.append(".SH SEE ALSO\nsystemctl(1); the units vmbus-host.service, vmbus-host@.service and vmbus-fcopy-daemon.service.")
    print("\n".join(out))


if __name__ == "__main__":
    main()
