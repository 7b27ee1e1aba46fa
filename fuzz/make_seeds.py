#!/usr/bin/env python3
"""Writes the committed seed corpora (fuzz/seeds/<target>/) from real iotls output.

    cargo build && python3 fuzz/make_seeds.py target/debug/iotls

tls_dissect: the records of real tour sessions (MQTT 3.1.1 and 5, a refused handshake) with their
key-log line, framed as the target reads them (whole flights, and one byte at a time for the first
records). mqtt_codec: every MQTT packet those sessions carried. policy: policies/*.json and a
workshop room's policy and registry. pem_describe: the room's certificates, PEM and DER.
"""
import base64, glob, json, os, shutil, struct, subprocess, sys, tempfile

iotls = os.path.abspath(sys.argv[1])
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
seeds = os.path.join(root, "fuzz", "seeds")
tmp = tempfile.mkdtemp(prefix="iotls-test-seeds-")


def put(target, name, data):
    d = os.path.join(seeds, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def tour(name, args):
    keylog = os.path.join(tmp, name + ".keys")
    out = subprocess.run([iotls, "tour", *args, "--json", "--keylog", keylog],
                         capture_output=True, cwd=tmp).stdout
    trace = json.loads(out)
    key = b""
    if os.path.exists(keylog):
        for line in open(keylog):
            label, cr, ms = line.split()
            if label == "CLIENT_RANDOM":
                key = bytes.fromhex(cr) + bytes.fromhex(ms)
    return trace, key


def frame(side, data):
    return bytes([side]) + struct.pack(">H", len(data)) + data


mqtt = set()
for name, args in [("tour", []), ("mqtt5", ["neighbour", "--mqtt5"]),
                   ("untrusted", ["untrusted-device"])]:
    trace, key = tour(name, args)
    records = sorted(trace["records"], key=lambda r: r["t_us"])
    head = (b"\x01" + key) if key else b"\x00"
    # Whole records, each one push.
    body = b"".join(frame(0 if r["from"] == "device" else 1, bytes.fromhex(r["hex"]))
                    for r in records)
    put("tls_dissect", name + "-records", head + body)
    # The first three records one byte at a time.
    small = b""
    for r in records[:3]:
        for b in bytes.fromhex(r["hex"]):
            small += frame(0 if r["from"] == "device" else 1, bytes([b]))
    put("tls_dissect", name + "-bytewise", b"\x00" + small)
    for e in trace["events"]:
        for p in e.get("mqtt") or []:
            mqtt.add(bytes.fromhex(p["hex"]))
for i, p in enumerate(sorted(mqtt)):
    put("mqtt_codec", "packet-%02d" % i, p)

room = os.path.join(tmp, "room")
subprocess.run([iotls, "pki", "init", room, "--devices", "2"], check=True, capture_output=True)
for p in glob.glob(os.path.join(root, "policies", "*.json")):
    shutil.copy(p, os.path.join(seeds, "policy", os.path.basename(p)))
put("policy", "room-policy.json", open(os.path.join(room, "room-policy.json"), "rb").read())
put("policy", "registry.json", open(os.path.join(room, "registry.json"), "rb").read())
for n in ["root", "issuing-ca", "broker", "button", "device-001"]:
    pem = open(os.path.join(room, n + ".pem"), "rb").read()
    put("pem_describe", n + ".pem", pem)
    first = pem.split(b"-----")[2]
    put("pem_describe", n + ".der", base64.b64decode(b"".join(first.split())))
for p in glob.glob(os.path.join(root, "walkthroughs", "*.toml")):
    shutil.copy(p, os.path.join(seeds, "walkthrough", os.path.basename(p)))
shutil.rmtree(tmp)
