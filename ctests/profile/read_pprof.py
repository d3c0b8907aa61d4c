"""Checks the contention profile's pprof output without Go: a small reader of
gzipped profile.proto (github.com/google/pprof proto/profile.proto), and the
driver of the go tool pprof test.

    read_pprof.py format DEMO DIR      profile_demo api, then check the file
    read_pprof.py env DEMO DIR         FT_WEAVE_PROFILE=contention:PATH, written at exit
    read_pprof.py badenv DEMO DIR      bad values: a message on stderr, exit 0
    read_pprof.py go DEMO DIR          go tool pprof -top (prints SKIPPED: without go)
    read_pprof.py dump FILE            prints what the reader decoded

Every check failure raises (exit status 1).
"""

import gzip
import os
import re
import shutil
import subprocess
import sys


# --- protobuf ---------------------------------------------------------------

def varint(buf, pos):
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long at %d" % pos)


def fields(buf):
    """(field number, wire type, value) of one message; value is an int or bytes."""
    pos = 0
    out = []
    while pos < len(buf):
        key, pos = varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = varint(buf, pos)
        elif wire == 2:
            n, pos = varint(buf, pos)
            value = bytes(buf[pos:pos + n])
            if len(value) != n:
                raise ValueError("truncated field %d" % field)
            pos += n
        elif wire == 1:
            value = int.from_bytes(buf[pos:pos + 8], "little")
            pos += 8
        elif wire == 5:
            value = int.from_bytes(buf[pos:pos + 4], "little")
            pos += 4
        else:
            raise ValueError("wire type %d of field %d" % (wire, field))
        out.append((field, wire, value))
    if pos != len(buf):
        raise ValueError("message overran its end")
    return out


def packed(wire, value):
    """A repeated varint field: packed (bytes) or one unpacked value."""
    if wire == 0:
        return [value]
    ints, pos = [], 0
    while pos < len(value):
        v, pos = varint(value, pos)
        ints.append(v)
    return ints


def signed(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def parse(data):
    raw = gzip.decompress(data)
    p = {"sample_type": [], "sample": [], "mapping": {}, "location": {}, "function": {},
         "strings": [], "comment": [], "period_type": None, "period": 0,
         "time_nanos": 0, "duration_nanos": 0, "default_sample_type": 0}
    for field, wire, value in fields(raw):
        if field == 1:
            d = dict((f, v) for f, _, v in fields(value))
            p["sample_type"].append((d.get(1, 0), d.get(2, 0)))
        elif field == 2:
            s = {"location_id": [], "value": [], "label": []}
            for f, w, v in fields(value):
                if f == 1:
                    s["location_id"] += packed(w, v)
                elif f == 2:
                    s["value"] += [signed(x) for x in packed(w, v)]
                elif f == 3:
                    d = dict((lf, lv) for lf, _, lv in fields(v))
                    s["label"].append((d.get(1, 0), d.get(2, 0), signed(d.get(3, 0)), d.get(4, 0)))
            p["sample"].append(s)
        elif field == 3:
            d = dict((f, v) for f, _, v in fields(value))
            p["mapping"][d.get(1, 0)] = d
        elif field == 4:
            loc = {"line": []}
            for f, w, v in fields(value):
                if f == 4:
                    loc["line"].append(dict((lf, lv) for lf, _, lv in fields(v)))
                else:
                    loc[f] = v
            p["location"][loc.get(1, 0)] = loc
        elif field == 5:
            d = dict((f, v) for f, _, v in fields(value))
            p["function"][d.get(1, 0)] = d
        elif field == 6:
            p["strings"].append(value.decode("utf-8"))
        elif field == 9:
            p["time_nanos"] = signed(value)
        elif field == 10:
            p["duration_nanos"] = signed(value)
        elif field == 11:
            d = dict((f, v) for f, _, v in fields(value))
            p["period_type"] = (d.get(1, 0), d.get(2, 0))
        elif field == 12:
            p["period"] = signed(value)
        elif field == 13:
            p["comment"] += packed(wire, value)
        elif field == 14:
            p["default_sample_type"] = value
    return p


# --- checks -----------------------------------------------------------------

def check(cond, what):
    if not cond:
        raise AssertionError(what)


def leaf_name(p, sample):
    """The function name of a sample's innermost location, or None."""
    if not sample["location_id"]:
        return None
    loc = p["location"][sample["location_id"][0]]
    if not loc["line"]:
        return None
    return p["strings"][p["function"][loc["line"][0][1]][2]]


def label(p, sample, key):
    for k, s, _, _ in sample["label"]:
        if p["strings"][k] == key:
            return p["strings"][s]
    return None


def check_profile(path, hot_address):
    with open(path, "rb") as f:
        data = f.read()
    check(data[:2] == b"\x1f\x8b", "not gzip")
    p = parse(data)
    S = p["strings"]
    check(S and S[0] == "", "string_table[0] must be empty")
    check([(S[t], S[u]) for t, u in p["sample_type"]] == [("contentions", "count"), ("delay", "nanoseconds")],
          "sample types %r" % p["sample_type"])
    check(p["period_type"] is not None and (S[p["period_type"][0]], S[p["period_type"][1]]) == ("contentions", "count"),
          "period type")
    check(p["period"] >= 1, "period %d" % p["period"])
    check(S[p["default_sample_type"]] == "delay", "default sample type")
    check(p["duration_nanos"] > 0, "duration")
    check(p["sample"], "no samples")
    for mid, m in p["mapping"].items():
        check(mid != 0 and m.get(2, 0) < m.get(3, 0), "mapping %r" % m)
    for lid, loc in p["location"].items():
        check(lid != 0, "location id 0")
        mid = loc.get(2, 0)
        if mid:
            m = p["mapping"][mid]
            check(m[2] <= loc[3] < m[3], "location %d outside its mapping" % lid)
        for line in loc["line"]:
            check(line[1] in p["function"], "location %d: unknown function" % lid)
    for s in p["sample"]:
        check(len(s["value"]) == 2 and s["value"][0] > 0 and s["value"][1] > 0, "values %r" % s["value"])
        check(all(i in p["location"] for i in s["location_id"]), "unknown location")
        check(label(p, s, "lock") is not None and label(p, s, "wait_site") is not None, "labels")
    top = max(p["sample"], key=lambda s: s["value"][1])
    check(int(label(p, top, "lock"), 16) == hot_address,
          "top sample's lock %s is not the hot lock %#x" % (label(p, top, "lock"), hot_address))
    check(leaf_name(p, top) == "profile_demo_hot_section", "top release site %r" % leaf_name(p, top))
    check(label(p, top, "wait_site").startswith("profile_demo_hot_section+0x"), "wait site %r" % label(p, top, "wait_site"))
    hot = sum(s["value"][1] for s in p["sample"] if int(label(p, s, "lock"), 16) == hot_address)
    total = sum(s["value"][1] for s in p["sample"])
    count = sum(s["value"][0] for s in p["sample"] if int(label(p, s, "lock"), 16) == hot_address)
    check(0 < count <= 4 * 200, "waits (%d): none, or more than acquisitions" % count)
    print("ok: %d samples, %d locations, %d mappings; hot lock %d waits, %.0f%% of %.3f s delay"
          % (len(p["sample"]), len(p["location"]), len(p["mapping"]), count, 100.0 * hot / total, total / 1e9))
    return p


def run_demo(demo, mode, path, env=None):
    out = subprocess.run([demo, mode, path], env=env, capture_output=True, text=True, timeout=120)
    sys.stdout.write(out.stdout)
    sys.stderr.write(out.stderr)
    check(out.returncode == 0, "profile_demo %s exited with %d" % (mode, out.returncode))
    m = re.search(r"hot=(0x[0-9a-f]+)", out.stdout)
    check(m is not None, "no hot= line")
    return int(m.group(1), 16), out


def main(argv):
    if argv[1] == "dump":
        p = parse(open(argv[2], "rb").read())
        for k in ("sample_type", "period_type", "period", "duration_nanos"):
            print(k, p[k])
        for s in p["sample"]:
            print(s["value"], leaf_name(p, s), [(p["strings"][k], p["strings"][v], n) for k, v, n, _ in s["label"]])
        return 0
    mode, demo, workdir = argv[1], argv[2], argv[3]
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "contention_%s.pb.gz" % mode)
    if mode == "format":
        hot, _ = run_demo(demo, "api", path)
        check_profile(path, hot)
    elif mode == "env":
        env = dict(os.environ, FT_WEAVE_PROFILE="contention:" + path, FT_WEAVE_PROFILE_RATE="1")
        hot, _ = run_demo(demo, "env", path, env)
        check(os.path.exists(path), "FT_WEAVE_PROFILE: nothing written at exit")
        check_profile(path, hot)
    elif mode == "badenv":
        for value, message in (("bogus", "FT_WEAVE_PROFILE=bogus ignored: expected contention:PATH"),
                               ("contention:", "FT_WEAVE_PROFILE=contention: ignored: expected contention:PATH")):
            env = dict(os.environ, FT_WEAVE_PROFILE=value)
            _, out = run_demo(demo, "env", path, env)
            check(message in out.stderr, "stderr %r lacks %r" % (out.stderr, message))
        env = dict(os.environ, FT_WEAVE_PROFILE="contention:" + os.path.join(workdir, "no-such-dir", "p.gz"))
        _, out = run_demo(demo, "env", path, env)
        check("cannot write" in out.stderr, "unwritable path: stderr %r" % out.stderr)
        env = dict(os.environ, FT_WEAVE_PROFILE_RATE="0")
        _, out = run_demo(demo, "env", path, env)
        check("FT_WEAVE_PROFILE_RATE=0 ignored" in out.stderr, "bad rate: stderr %r" % out.stderr)
        print("ok: bad values reported, the program ran to completion")
    elif mode == "go":
        go = os.environ.get("FTW_GO") or shutil.which("go")
        if go is None:
            print("SKIPPED: go not found (Debian: apt-get install golang-go)")
            return 0
        hot, _ = run_demo(demo, "api", path)
        env = dict(os.environ, PPROF_TMPDIR=workdir, HOME=os.environ.get("HOME", workdir))
        out = subprocess.run([go, "tool", "pprof", "-top", demo, path], env=env, capture_output=True, text=True,
                             timeout=120)
        sys.stdout.write(out.stdout)
        sys.stderr.write(out.stderr)
        check(out.returncode == 0, "go tool pprof exited with %d" % out.returncode)
        check("Type: delay" in out.stdout, "no 'Type: delay'")
        rows = [l for l in out.stdout.splitlines() if re.match(r"\s*[0-9.]+[a-zµ]*s\s+[0-9.]+%", l)]
        check(rows, "no rows in pprof -top output")
        check(rows[0].split()[-1] == "profile_demo_hot_section", "top row %r" % rows[0])
        tags = subprocess.run([go, "tool", "pprof", "-tags", path], env=env, capture_output=True, text=True,
                              timeout=120)
        sys.stdout.write(tags.stdout)
        check(tags.returncode == 0 and ("%#x" % hot) in tags.stdout, "-tags lacks the hot lock %#x" % hot)
        print("ok: go tool pprof reads the profile; the hot section is on top")
    else:
        raise SystemExit("unknown mode " + mode)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
