"""The VPC resolver: instances' names resolve from inside instances, forward and reverse,
and nothing else is answered (no forwarding off the machine)."""

from __future__ import annotations

from helpers import ssh, wait_state


def test_names_resolve_inside_the_vpc(ec2, launch, key_pair, server):
    a = launch()["Instances"][0]
    b = launch()["Instances"][0]
    ip = wait_state(ec2, a["InstanceId"], "running")["PublicIpAddress"]
    b = wait_state(ec2, b["InstanceId"], "running")
    key = key_pair[1]
    assert "nameserver" in ssh(key, ip, "cat /etc/resolv.conf").stdout
    assert ssh(key, ip, f"getent hosts {b['PrivateDnsName']}").stdout.split()[0] == b["PrivateIpAddress"]
    # Public names answer with the private address inside the VPC, as on EC2.
    assert ssh(key, ip, f"getent hosts {b['PublicDnsName']}").stdout.split()[0] == b["PrivateIpAddress"]
    # The short name works through the search domain; reverse lookups answer too.
    short = b["PrivateDnsName"].split(".")[0]
    assert ssh(key, ip, f"getent hosts {short}").stdout.split()[0] == b["PrivateIpAddress"]
    reverse = ssh(key, ip, f"python3 -c \"import socket; print(socket.gethostbyaddr('{b['PrivateIpAddress']}')[0])\"")
    assert reverse.stdout.strip() == b["PrivateDnsName"]
    # 169.254.169.253 is the same resolver.
    query = ("python3 -c \"import socket,struct; s=socket.socket(2,2); s.settimeout(2); "
             "q=struct.pack('>HHHHHH',7,256,1,0,0,0)+b''.join(bytes([len(p)])+p.encode() for p in "
             f"'{b['PrivateDnsName']}'.split('.'))+b'\\\\x00\\\\x00\\\\x01\\\\x00\\\\x01'; "
             "s.sendto(q,('169.254.169.253',53)); r=s.recv(512); print(socket.inet_ntoa(r[-4:]))\"")
    assert ssh(key, ip, query).stdout.strip() == b["PrivateIpAddress"]
    # Anything outside the cloud's zones is refused at once, never forwarded.
    out = ssh(key, ip, "getent hosts deb.debian.org; echo rc=$?").stdout
    assert "rc=2" in out
