#!/usr/bin/env python3
"""Code size of a wasm module by crate, from its name section: `python3 bench/tools/wasm_sizes.py [MODULE [TOP]]`.
Prints the bytes of function bodies grouped by the crate their (demangled-ish) name starts with, and
the largest functions. Needs a module that still has its name section: the deployed build/index_bg.wasm
has none (scripts/build drops it), so MODULE defaults to the named copy of the same build,
target/wasm-names/chat.wasm (services' workers: target/wasm-names/<service>.wasm)."""
import re, sys, collections

def leb(b, i):
    r = s = 0
    while True:
        x = b[i]; i += 1; r |= (x & 0x7f) << s; s += 7
        if x < 0x80:
            return r, i

def main(path, top=25):
    data = open(path, 'rb').read()
    i = 8
    n_imported_funcs = 0
    bodies = []
    names = {}
    sections = collections.Counter()
    while i < len(data):
        sid = data[i]; i += 1
        size, i = leb(data, i)
        end = i + size
        if sid == 2:  # imports: count function imports
            cnt, j = leb(data, i)
            for _ in range(cnt):
                l, j = leb(data, j); j += l
                l, j = leb(data, j); j += l
                kind = data[j]; j += 1
                if kind == 0:
                    _, j = leb(data, j); n_imported_funcs += 1
                elif kind == 1:
                    j += 1; fl, j = leb(data, j); _, j = leb(data, j)
                    if fl & 1: _, j = leb(data, j)
                elif kind == 2:
                    fl, j = leb(data, j); _, j = leb(data, j)
                    if fl & 1: _, j = leb(data, j)
                elif kind == 3:
                    j += 2
                elif kind == 4:
                    j += 1; _, j = leb(data, j)
        elif sid == 10:
            cnt, j = leb(data, i)
            for k in range(cnt):
                sz, j2 = leb(data, j)
                bodies.append(sz + (j2 - j))
                j = j2 + sz
        elif sid == 0:
            nl, j = leb(data, i); name = data[j:j + nl].decode(); j += nl
            sections['custom:' + name] += size
            if name == 'name':
                while j < end:
                    sub = data[j]; j += 1
                    ssz, j = leb(data, j); send = j + ssz
                    if sub == 1:
                        cnt, j = leb(data, j)
                        for _ in range(cnt):
                            idx, j = leb(data, j); l, j = leb(data, j)
                            names[idx] = data[j:j + l].decode('utf8', 'replace'); j += l
                    j = send
        if sid != 0:
            sections[sid] += size
        i = end
    by_crate = collections.Counter()
    funcs = []
    for k, sz in enumerate(bodies):
        name = names.get(n_imported_funcs + k, f'func{n_imported_funcs + k}')
        funcs.append((sz, name))
        m = re.match(r'^(?:<)?(?:_ZN\d+)?([A-Za-z_][A-Za-z0-9_]*)', name)
        crate = m.group(1) if m else '?'
        if name.startswith('<'):
            inner = re.match(r'^<([A-Za-z_][A-Za-z0-9_]*)', name)
            crate = inner.group(1) if inner else crate
        by_crate[crate] += sz
    total = sum(bodies)
    if not names:
        print(f'{path}: no name section (the deployed module); use target/wasm-names/*.wasm', file=sys.stderr)
    print(f'{path}: {len(data)} bytes; code {total} bytes in {len(bodies)} functions; name section {sections["custom:name"]} bytes; data {sections[11]} bytes')
    print('\ncode bytes by crate (first path segment of the function name):')
    for c, sz in by_crate.most_common(top):
        print(f'  {sz:8d}  {100*sz/total:5.1f}%  {c}')
    print('\nlargest functions:')
    for sz, name in sorted(funcs, reverse=True)[:top]:
        print(f'  {sz:8d}  {name[:140]}')

if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else 'target/wasm-names/chat.wasm', int(sys.argv[2]) if len(sys.argv) > 2 else 25)
