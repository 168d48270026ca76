#!/usr/bin/env python3
"""Synthetic directories for `warden dir sync` measurements (BENCHMARKS.md).

    scripts/gen-directory.py OUT_DIR [--users 10000] [--roles 1000] [--members 10]

Writes OUT_DIR/ad.ldif (an AD-style LDIF export: binary objectGUIDs, managers,
groups with `member` DNs and `managedBy`), OUT_DIR/graph-users.json and
OUT_DIR/graph-groups.json (Graph pages with members/owners), and
OUT_DIR/ad-delta.ldif (1% of users modified, 0.1% deleted, 1% of groups with
one member more). Deterministic: the same arguments give the same files.
"""
import argparse
import base64
import json
import os
import random
import uuid

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--users", type=int, default=10000)
p.add_argument("--roles", type=int, default=1000)
p.add_argument("--members", type=int, default=10)
a = p.parse_args()
rng = random.Random(7)
os.makedirs(a.out, exist_ok=True)
base = "DC=corp,DC=example"  # OU=Staff and OU=Groups below it


def guid():
    return uuid.UUID(int=rng.getrandbits(128), version=4)


users = [(f"user{i:05d}", guid()) for i in range(a.users)]
roles = [(f"role{i:04d}", guid()) for i in range(a.roles)]
udn = lambda n: f"CN={n},OU=Staff,{base}"
gdn = lambda n: f"CN={n},OU=Groups,{base}"
members = {r: rng.sample(range(a.users), a.members) for r, _ in roles}

with open(os.path.join(a.out, "ad.ldif"), "w") as f:
    f.write("version: 1\n")
    for i, (n, g) in enumerate(users):
        f.write(f"\ndn: {udn(n)}\nobjectClass: user\ncn: {n}\nsn: {n}\nsAMAccountName: {n}\n")
        f.write(f"objectGUID:: {base64.b64encode(g.bytes_le).decode()}\n")
        f.write(f"displayName: User {i}\ntitle: Engineer\ndepartment: D{i % 50}\nmail: {n}@corp.example\n")
        if i:
            f.write(f"manager: {udn(users[(i - 1) // 10][0])}\n")
    for n, g in roles:
        f.write(f"\ndn: {gdn(n)}\nobjectClass: group\ncn: {n}\nname: {n}\n")
        f.write(f"objectGUID:: {base64.b64encode(g.bytes_le).decode()}\ngroupType: -2147483646\n")
        for m in members[n]:
            f.write(f"member: {udn(users[m][0])}\n")
        f.write(f"managedBy: {udn(users[members[n][0]][0])}\n")

with open(os.path.join(a.out, "ad-delta.ldif"), "w") as f:
    f.write("version: 1\n")
    for i in range(0, a.users, 100):
        f.write(f"\ndn: {udn(users[i][0])}\nchangetype: modify\nreplace: title\ntitle: Lead\n-\n")
    for i in range(50, a.users, 1000):
        f.write(f"\ndn: {udn(users[i][0])}\nchangetype: delete\n")
    for j in range(0, a.roles, 100):
        n = roles[j][0]
        f.write(f"\ndn: {gdn(n)}\nchangetype: modify\nadd: member\nmember: {udn(users[(j * 7 + 3) % a.users][0])}\n-\n")

gu = []
for i, (n, g) in enumerate(users):
    o = {"id": str(g), "displayName": f"User {i}", "mailNickname": n, "accountEnabled": True,
         "businessPhones": [], "jobTitle": "Engineer", "mail": f"{n}@contoso.example"}
    if i:
        o["manager"] = {"id": str(users[(i - 1) // 10][1])}
    gu.append(o)
gg = [{"id": str(g), "displayName": n, "mailNickname": n, "groupTypes": [], "securityEnabled": True,
       "members": [{"id": str(users[m][1])} for m in members[n]],
       "owners": [{"id": str(users[members[n][0]][1])}]} for n, g in roles]
json.dump({"value": gu}, open(os.path.join(a.out, "graph-users.json"), "w"))
json.dump({"value": gg}, open(os.path.join(a.out, "graph-groups.json"), "w"))
