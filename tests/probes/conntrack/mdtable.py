import re, sys
def summarize(line):
    m = re.match(r"(\w+)\s+(\d+) (\d+) (?:([A-Z_0-9]+) )?src=(\S+) dst=(\S+)", line)
    name, proto, tmo, st, src = m.group(1), m.group(2), m.group(3), m.group(4), m.group(5)
    parts = [st or name, tmo]
    if "[UNREPLIED]" in line: parts.append("UNREPLIED")
    if "[ASSURED]" in line: parts.append("ASSURED")
    if src == "10.201.2.5": parts.append("(opened by S)")
    return " ".join(parts)
out = []
for path in sys.argv[1:]:
    text = open(path).read()
    for block in re.findall(r"TEST\(KernelSequences, (\w+)\) \{\n(.*?)\n\}", text, re.S):
        name, body = block
        out.append(f"\n**{name}**\n\n| # | packet | ctstate | dir | entry afterwards |\n|---|---|---|---|---|")
        n = 0
        for m in re.finditer(r'r\.sleep\(([\d.]+)\);|r\.step\("((?:[^"\\]|\\.)*)", .*?,\n\s+"(\w+)", "([\w-]+)",\n\s+"((?:[^"\\]|\\.)*)"\);', body):
            if m.group(1):
                out.append(f"| | *wait {m.group(1)} s* | | | |")
                continue
            n += 1
            desc, st, d, lines = m.group(2), m.group(3), m.group(4), m.group(5)
            entry = "; ".join(summarize(l) for l in lines.split(" || ")) if lines else "none"
            out.append(f"| {n} | {desc} | {st} | {d if d != '-' else ''} | {entry} |")
print("\n".join(out))
