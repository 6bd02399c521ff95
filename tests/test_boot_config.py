"""Boot-time configuration: user data, the metadata service, console output."""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.request
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from helpers import ssh, wait_for, wait_state

IMDS = "http://169.254.169.254"
TOKEN = f"$(curl -s -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' {IMDS}/latest/api/token)"

WEB_SERVER = """#!/bin/bash
echo "user-data says hello"
mkdir -p /srv/www && echo "served by $(hostname)" > /srv/www/index.html
cd /srv/www && nohup python3 -m http.server 8080 >/var/log/web.log 2>&1 &
"""


@pytest.fixture(scope="module")
def web_groups(ec2):  # noqa: ANN001, ANN201
    """The default group (SSH) plus one that opens :8080 to the world."""
    default = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    web = ec2.create_security_group(GroupName="t-web-8080", Description="8080 open")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    yield [default, web]
    ec2.delete_security_group(GroupId=web)


def http_get(url: str, timeout: float = 2) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (loopback only)
        return resp.read().decode()


def answers(url: str) -> bool:
    try:
        http_get(url, timeout=0.5)
        return True
    except OSError:
        return False


def console(ec2, iid: str) -> str:  # noqa: ANN001
    # botocore decodes the base64 Output for its callers, as with AWS.
    return ec2.get_console_output(InstanceId=iid, Latest=True).get("Output", "")


def test_shell_script_starts_a_server_reachable_on_the_public_ip(ec2, web_groups, launch, key_pair):
    inst = launch(UserData=WEB_SERVER, SecurityGroupIds=web_groups)["Instances"][0]
    url = f"http://{inst['PublicIpAddress']}:8080/"
    assert wait_for(lambda: answers(url), 30)
    assert http_get(url).strip().startswith("served by ip-")
    assert wait_for(lambda: "user-data finished with status 0" in console(ec2, inst["InstanceId"]), 10)
    text = console(ec2, inst["InstanceId"])
    assert "user-data says hello" in text and "BEGIN SSH HOST KEY FINGERPRINTS" in text
    log = ssh(key_pair[1], inst["PublicIpAddress"], "cat /var/log/cloud-init-output.log").stdout
    assert "user-data says hello" in log
    # The server is still up after the script ended, and survives nothing else.
    assert answers(url)


def test_cloud_config(ec2, launch, key_pair, server):
    extra_key = (server.data_dir / f"{key_pair[0]}.pem")
    pub = subprocess.run(["ssh-keygen", "-y", "-f", str(extra_key)], capture_output=True,
                         text=True, check=True).stdout.strip()
    config = f"""#cloud-config
bootcmd:
  - echo bootcmd-ran >> /var/tmp/bootcmd.log
write_files:
  - path: /etc/app/config.json
    content: '{{"port": 9000}}'
    permissions: '0640'
users:
  - default
  - name: deploy
    sudo: ALL=(ALL) NOPASSWD:ALL
    ssh_authorized_keys:
      - {pub}
packages:
  - nginx
runcmd:
  - [sh, -c, "echo runcmd-list > /var/tmp/runcmd"]
  - echo runcmd-string >> /var/tmp/runcmd
final_message: "done after $UPTIME seconds"
"""
    inst = launch(UserData=config)["Instances"][0]
    iid = inst["InstanceId"]
    assert wait_for(lambda: "user-data finished" in console(ec2, iid), 30)
    text = console(ec2, iid)
    assert "done after" in text
    assert "packages: not installing nginx" in text  # no mirror reachable: said clearly
    ip = wait_state(ec2, iid, "running")["PublicIpAddress"]
    out = ssh(key_pair[1], ip, "sudo cat /etc/app/config.json; echo; stat -c %a /etc/app/config.json; "
              "cat /var/tmp/runcmd; cat /var/tmp/bootcmd.log").stdout.split()
    assert out == ['{"port":', '9000}', "640", "runcmd-list", "runcmd-string", "bootcmd-ran"]
    deploy = subprocess.run(["ssh", "-i", str(extra_key), "-o", "StrictHostKeyChecking=no",
                             "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                             f"deploy@{ip}", "sudo -n id -u"], capture_output=True, text=True,
                            timeout=30)
    assert deploy.stdout.strip() == "0"
    # bootcmd runs at every boot; runcmd only once per instance.
    ec2.reboot_instances(InstanceIds=[iid])
    assert wait_for(lambda: ssh(key_pair[1], ip, "cat /var/tmp/bootcmd.log", check=False)
                    .stdout.split().count("bootcmd-ran") == 2, 30)
    assert ssh(key_pair[1], ip, "cat /var/tmp/runcmd").stdout.split() == ["runcmd-list", "runcmd-string"]


def test_multipart_user_data(ec2, launch, key_pair):
    message = MIMEMultipart()
    message.attach(MIMEText("#cloud-config\nwrite_files:\n  - path: /var/tmp/from-config\n"
                            "    content: config-part\n", "cloud-config"))
    message.attach(MIMEText("#!/bin/sh\necho script-part > /var/tmp/from-script\n", "x-shellscript"))
    inst = launch(UserData=message.as_string())["Instances"][0]
    assert wait_for(lambda: "user-data finished with status 0" in console(ec2, inst["InstanceId"]), 30)
    out = ssh(key_pair[1], inst["PublicIpAddress"], "cat /var/tmp/from-config; echo; cat /var/tmp/from-script").stdout
    assert out.split() == ["config-part", "script-part"]


def test_per_boot_script_brings_a_service_back_after_stop_start(ec2, web_groups, launch, key_pair):
    script = """#!/bin/bash
mkdir -p /var/lib/cloud/scripts/per-boot
cat > /var/lib/cloud/scripts/per-boot/web.sh <<'EOS'
#!/bin/bash
cd /tmp && nohup python3 -m http.server 8080 >/dev/null 2>&1 &
EOS
chmod +x /var/lib/cloud/scripts/per-boot/web.sh
/var/lib/cloud/scripts/per-boot/web.sh
"""
    inst = launch(UserData=script, SecurityGroupIds=web_groups)["Instances"][0]
    iid = inst["InstanceId"]
    assert wait_for(lambda: answers(f"http://{inst['PublicIpAddress']}:8080/"), 30)
    ec2.stop_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "stopped")
    ec2.start_instances(InstanceIds=[iid])
    ip = wait_state(ec2, iid, "running")["PublicIpAddress"]
    assert wait_for(lambda: answers(f"http://{ip}:8080/"), 30)


def imds(key, ip: str, command: str) -> str:  # noqa: ANN001
    return ssh(key, ip, command).stdout


def test_imds_v2_tokens_and_v1_when_required(ec2, launch, key_pair):
    inst = launch(TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "meta"}]}],
                  MetadataOptions={"InstanceMetadataTags": "enabled"})["Instances"][0]
    iid = inst["InstanceId"]
    ip = wait_state(ec2, iid, "running")["PublicIpAddress"]
    key = key_pair[1]
    v2 = f"T={TOKEN}; curl -s -H \"X-aws-ec2-metadata-token: $T\" {IMDS}/latest/meta-data/"
    assert imds(key, ip, v2 + "instance-id") == iid
    assert imds(key, ip, v2 + "local-ipv4") == inst["PrivateIpAddress"]
    assert imds(key, ip, v2 + "public-ipv4") == inst["PublicIpAddress"]
    assert imds(key, ip, v2 + "placement/availability-zone") == "gureum-1a"
    assert imds(key, ip, v2 + "placement/region") == "gureum-1"
    assert imds(key, ip, v2 + "instance-type") == "t3.micro"
    assert imds(key, ip, v2 + "tags/instance/Name") == "meta"
    assert imds(key, ip, v2 + "public-keys/") == f"0={key_pair[0]}"
    mac = imds(key, ip, v2 + "mac")
    assert imds(key, ip, v2 + f"network/interfaces/macs/{mac}/local-ipv4s") == inst["PrivateIpAddress"]
    assert "instance-id" in imds(key, ip, v2).split("\n")
    code = "curl -s -o /dev/null -w '%{http_code}' "
    assert imds(key, ip, code + f"-X PUT {IMDS}/latest/api/token") == "400"
    assert imds(key, ip, code + f"-H 'X-aws-ec2-metadata-token: forged' {IMDS}/latest/meta-data/") == "401"
    assert imds(key, ip, code + f"{IMDS}/latest/meta-data/instance-id") == "200"  # v1: optional
    ec2.modify_instance_metadata_options(InstanceId=iid, HttpTokens="required")
    assert imds(key, ip, code + f"{IMDS}/latest/meta-data/instance-id") == "401"
    assert imds(key, ip, v2 + "instance-id") == iid
    ec2.modify_instance_metadata_options(InstanceId=iid, HttpEndpoint="disabled")
    assert imds(key, ip, code + f"{IMDS}/latest/meta-data/instance-id") == "403"
    described = wait_state(ec2, iid, "running")["MetadataOptions"]
    assert described["HttpTokens"] == "required" and described["HttpEndpoint"] == "disabled"
    with pytest.raises(ec2.exceptions.ClientError) as err:
        ec2.modify_instance_metadata_options(InstanceId=iid, HttpPutResponseHopLimit=65)
    assert err.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_identity_document_verifies_against_published_certificate(ec2, launch, key_pair, server):
    inst = launch()["Instances"][0]
    ip = wait_state(ec2, inst["InstanceId"], "running")["PublicIpAddress"]
    base = f"{IMDS}/latest/dynamic/instance-identity"
    doc = imds(key_pair[1], ip, f"curl -s {base}/document").encode()
    signature = base64.b64decode(imds(key_pair[1], ip, f"curl -s {base}/signature"))
    cert = x509.load_pem_x509_certificate(http_get(server.endpoint + "/identity-certificate.pem").encode())
    cert.public_key().verify(signature, doc, padding.PKCS1v15(), hashes.SHA256())
    parsed = json.loads(doc)
    assert parsed["instanceId"] == inst["InstanceId"] and parsed["region"] == "gureum-1"
    with pytest.raises(Exception):  # noqa: B017  (a changed document must not verify)
        cert.public_key().verify(signature, doc.replace(b"t3.micro", b"m5.large"),
                                 padding.PKCS1v15(), hashes.SHA256())
    pkcs7 = imds(key_pair[1], ip, f"curl -s {base}/pkcs7")
    assert len(base64.b64decode(pkcs7)) > 256


def test_an_instance_cannot_read_another_instances_user_data(ec2, launch, key_pair, server):
    a = launch(UserData="#!/bin/sh\necho secret-of-a\n")["Instances"][0]
    b = launch(UserData="#!/bin/sh\necho secret-of-b\n")["Instances"][0]
    ip_a = wait_state(ec2, a["InstanceId"], "running")["PublicIpAddress"]
    wait_state(ec2, b["InstanceId"], "running")
    assert "secret-of-a" in imds(key_pair[1], ip_a, f"curl -s {IMDS}/latest/user-data")
    # From inside, root cannot take B's address at all (no CAP_NET_ADMIN over the netns)...
    out = ssh(key_pair[1], ip_a, f"sudo -n ip addr add {b['PrivateIpAddress']}/32 dev eth0; echo rc=$?").stdout
    assert "rc=0" not in out
    # ...and even with the host's powers inside A's netns, a forged source is dropped on the bridge.
    netns = next(n for n in server.host_objects()["netns"] if a["InstanceId"] in n)
    subprocess.run(["ip", "-n", netns, "addr", "add", f"{b['PrivateIpAddress']}/32", "dev", "eth0"], check=True)
    forged = subprocess.run(["ip", "netns", "exec", netns, "curl", "-s", "-m", "3", "--interface",
                             b["PrivateIpAddress"], f"{IMDS}/latest/user-data"],
                            capture_output=True, text=True)
    assert "secret-of-b" not in forged.stdout and forged.returncode != 0
    subprocess.run(["ip", "-n", netns, "addr", "del", f"{b['PrivateIpAddress']}/32", "dev", "eth0"], check=True)


def test_user_data_attribute_can_change_while_stopped(ec2, launch):
    iid = launch(UserData="#!/bin/sh\necho one\n")["Instances"][0]["InstanceId"]
    wait_state(ec2, iid, "running")
    with pytest.raises(ec2.exceptions.ClientError) as err:
        ec2.modify_instance_attribute(InstanceId=iid, UserData={"Value": b"#!/bin/sh\necho two\n"})
    assert err.value.response["Error"]["Code"] == "IncorrectInstanceState"
    ec2.stop_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "stopped")
    ec2.modify_instance_attribute(InstanceId=iid, UserData={"Value": b"#!/bin/sh\necho two\n"})
    value = ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")["UserData"]["Value"]
    assert base64.b64decode(value) == b"#!/bin/sh\necho two\n"


def test_user_data_limit(ec2, image_id):
    with pytest.raises(ec2.exceptions.ClientError) as err:
        ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, UserData="#!/bin/sh\n" + "x" * 17000)
    assert err.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_boto3_inside_an_instance_finds_region_and_identity(ec2, launch, key_pair):
    import boto3
    import botocore

    inst = launch()["Instances"][0]
    ip = wait_state(ec2, inst["InstanceId"], "running")["PublicIpAddress"]
    site = __import__("pathlib").Path(botocore.__file__).parent.parent
    names = ["botocore", "boto3", "jmespath", "dateutil", "s3transfer", "urllib3", "six.py"]
    assert boto3  # the host's own copies are what the instance gets
    tar = subprocess.Popen(["tar", "-C", str(site), "-czf", "-", *names], stdout=subprocess.PIPE)
    subprocess.run(["ssh", "-i", str(key_pair[1]), "-o", "StrictHostKeyChecking=no",
                    "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                    f"ec2-user@{ip}", "mkdir -p pylib && tar -C pylib -xzf -"],
                   stdin=tar.stdout, check=True, timeout=120)
    tar.wait()
    # botocore's own IMDS region lookup (what defaults_mode=auto uses): region = zone minus letter.
    program = ("import boto3, json, botocore.utils as u; f = u.IMDSFetcher(); "
               "t = f._fetch_metadata_token(); "
               "doc = json.loads(f._get_request('/latest/dynamic/instance-identity/document', None, t).text); "
               "print(u.InstanceMetadataRegionFetcher().retrieve_region(), doc['instanceId'])")
    out = ssh(key_pair[1], ip, f"PYTHONPATH=$HOME/pylib python3 -c \"{program}\"", timeout=120).stdout
    assert out.split() == ["gureum-1", inst["InstanceId"]]


def test_token_expiry_and_hop_limit_on_the_wire(ec2, launch, key_pair, server):
    inst = launch()["Instances"][0]
    iid = inst["InstanceId"]
    ip = wait_state(ec2, iid, "running")["PublicIpAddress"]
    key = key_pair[1]
    expired = ("T=$(curl -s -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 1' "
               f"{IMDS}/latest/api/token); sleep 2.2; curl -s -o /dev/null -w '%{{http_code}}' "
               f"-H \"X-aws-ec2-metadata-token: $T\" {IMDS}/latest/meta-data/instance-id")
    assert imds(key, ip, expired) == "401"
    # The token answer leaves the VPC router with IP TTL = the hop limit: count it on the wire.
    prefix = next(iter(server.host_objects()["nft_tables"])).split()[-1]
    in_router = ["ip", "netns", "exec", f"{prefix}-{inst['VpcId']}", "nft"]
    subprocess.run([*in_router, "-f", "-"], check=True, text=True, input="""
table ip hoptest {
  chain count {
    type filter hook postrouting priority 0; policy accept;
    ip ttl 1 tcp sport 80 tcp flags & (syn | fin | rst) == 0 counter
    ip ttl 3 tcp sport 80 tcp flags & (syn | fin | rst) == 0 counter
  }
}""")
    try:
        put = f"curl -s -o /dev/null -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' {IMDS}/latest/api/token"
        imds(key, ip, put)
        ec2.modify_instance_metadata_options(InstanceId=iid, HttpPutResponseHopLimit=3)
        imds(key, ip, put)
        listing = subprocess.run([*in_router, "-j", "list", "chain", "ip", "hoptest", "count"],
                                 capture_output=True, text=True, check=True).stdout
        counts = [e["expr"][-1]["counter"]["packets"] for e in json.loads(listing)["nftables"]
                  if "rule" in e for e in [e["rule"]]]
        assert counts[0] >= 1 and counts[1] >= 1, counts
    finally:
        subprocess.run([*in_router, "delete", "table", "ip", "hoptest"], check=True)
