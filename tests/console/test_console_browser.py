"""The web console in a real browser: Debian's chromium, headless, driven through
chromium-driver by Selenium, against the whole cloud. Each test opens a page as a person would
(signed in with the admin's key), asserts what is on the screen, and saves a screenshot under
its own tmp_path. Pages are live: a volume created after its page was drawn appears without a
reload, and a trace fills in its NC steps as they happen."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.console.support import FAST, launch
from tests.support.cloud import Cloud, running_cloud

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WAIT_S = 60


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with running_cloud(tmp_path_factory.mktemp("console-cloud"), nodes=2) as c:
        yield c


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """One headless chromium for the module (its own profile directory)."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1400,1000",
                     f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def admin_browser(cloud: Cloud, browser: WebDriver) -> WebDriver:
    """The browser, signed in with the admin's access key through the sign-in form."""
    browser.get(f"{cloud.clc_url}/console/")
    assert browser.current_url.endswith("/console/login")
    browser.find_element(By.ID, "access_key").send_keys(cloud.admin.access_key)
    browser.find_element(By.ID, "secret_key").send_keys(cloud.admin.secret_key)
    browser.find_element(By.ID, "sign-in").click()
    WebDriverWait(browser, WAIT_S).until(lambda b: b.current_url.endswith("/console/topology"))
    return browser


@pytest.fixture(scope="module")
def launched(cloud: Cloud) -> tuple[str, str, str]:
    """(instance id, RunInstances request id, its node) of one m1.small launched with boto3."""
    image = cloud.register_image()
    instance_id, request_id = launch(cloud, image)
    return instance_id, request_id, cloud.nodes_of([instance_id])[instance_id]


@pytest.fixture
def shot(browser: WebDriver, tmp_path: Path) -> Callable[[str], Path]:
    def save(name: str) -> Path:
        path = tmp_path / f"{name}.png"
        assert browser.save_screenshot(str(path)), f"no screenshot at {path}"
        return path
    return save


def _open(browser: WebDriver, cloud: Cloud, path: str) -> None:
    browser.get(f"{cloud.clc_url}{path}")
    assert "/console/login" not in browser.current_url


def texts(browser: WebDriver, css: str) -> list[str]:
    """What a person reads in every element `css` matches, now. Read in one script call: the
    page's live refresh replaces its elements every two seconds, so an element found in one
    call may be gone by the next."""
    return browser.execute_script(  # type: ignore[no-any-return]
        "return Array.from(document.querySelectorAll(arguments[0]), e => e.innerText.trim());", css)


def text(browser: WebDriver, css: str) -> str:
    found = texts(browser, css)
    assert found, f"nothing on the page matches {css}"
    return found[0]


def _until(browser: WebDriver, css: str, what: str) -> str:
    """The text of the first element `css` matches, once the page (refreshed live) shows it."""
    return WebDriverWait(browser, WAIT_S, poll_frequency=0.25).until(  # type: ignore[no-any-return]
        lambda b: (found := texts(b, css)) and found[0], message=what)


def _refreshes(browser: WebDriver) -> int:
    return int(browser.execute_script("return Number(document.body.dataset.refreshes || 0);"))


def test_topology_shows_every_service_and_node_with_its_state(
        cloud: Cloud, admin_browser: WebDriver, shot: Callable[[str], Path]) -> None:
    _open(admin_browser, cloud, "/console/topology")
    for service in ("clc", "walrus", "sc", "cc", "nc"):
        assert text(admin_browser, f'.box[data-service="{service}"] .state') == "up", service
    names = [n.name for n in cloud.nodes().nodes]
    assert len(names) == 2
    for name in names:
        assert text(admin_browser, f'.box[data-node="{name}"] .state') == "up"
    assert "cloud admin" in text(admin_browser, "#who")
    shot("topology")


def test_an_instance_launched_with_boto3_appears_on_its_node(
        cloud: Cloud, admin_browser: WebDriver, launched: tuple[str, str, str],
        shot: Callable[[str], Path]) -> None:
    instance_id, _, node = launched
    _open(admin_browser, cloud, "/console/nodes")
    row = f'tr[data-node="{node}"]'
    assert text(admin_browser, f'{row} li[data-instance="{instance_id}"]').startswith(instance_id)
    # m1.small books one core, 256 MB and its disk on that node: booked / max as the CC says.
    info = next(n for n in cloud.nodes().nodes if n.name == node)
    assert info.max and info.free
    cores = text(admin_browser, f"{row} td.cores")
    assert f"{info.max.cores - info.free.cores} / {info.max.cores}" in cores
    assert f"/ {info.max.memory_mb} MB" in text(admin_browser, f"{row} td.memory")
    assert f"/ {info.max.disk_gb} GB" in text(admin_browser, f"{row} td.disk")
    # The test cloud offers MAX_CORES=8 per node: on a host with fewer, overcommit shows.
    host_cores = os.cpu_count() or 1
    if host_cores < info.max.cores:
        assert f"overcommit ×{round(info.max.cores / host_cores, 2):g}" in cores
    else:
        assert "overcommit" not in cores
    shot("nodes")

    _open(admin_browser, cloud, "/console/instances")
    described = cloud.ec2().describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    row = f'tr[data-instance="{instance_id}"]'
    assert "running" in text(admin_browser, row)
    assert node in text(admin_browser, f"{row} .node")
    assert text(admin_browser, f"{row} .private-ip") == described["PrivateIpAddress"]
    assert text(admin_browser, f"{row} .public-ip") == described.get("PublicIpAddress", "—")
    shot("instances")


def test_a_volume_and_its_snapshot_appear_live_with_progress(
        cloud: Cloud, admin_browser: WebDriver, shot: Callable[[str], Path]) -> None:
    _open(admin_browser, cloud, "/console/volumes")
    before = _refreshes(admin_browser)
    ec2 = cloud.ec2()
    volume_id = ec2.create_volume(Size=1, AvailabilityZone=cloud.config.zones[0])["VolumeId"]
    # No reload: the page's own polling brings the new volume in.
    row = f'tr[data-volume="{volume_id}"]'
    assert "1 GiB" in _until(admin_browser, row, f"{volume_id} on the page")
    assert _refreshes(admin_browser) > before
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume_id], WaiterConfig=FAST)
    _until(admin_browser, f"{row} .state-available", f"{volume_id} available")

    snapshot_id = ec2.create_snapshot(VolumeId=volume_id, Description="console test")["SnapshotId"]
    row = f'tr[data-snapshot="{snapshot_id}"]'
    _until(admin_browser, row, f"{snapshot_id} on the page")
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[snapshot_id], WaiterConfig=FAST)
    assert _until(admin_browser, f"{row} .state-completed", f"{snapshot_id} completed") == "completed"
    assert text(admin_browser, f"{row} .progress") == "100%"
    assert volume_id in text(admin_browser, row) and "console test" in text(admin_browser, row)
    shot("volumes")


def test_an_attached_volume_shows_on_its_instance(
        cloud: Cloud, admin_browser: WebDriver, launched: tuple[str, str, str],
        shot: Callable[[str], Path]) -> None:
    instance_id = launched[0]
    ec2 = cloud.ec2()
    volume_id = ec2.create_volume(Size=1, AvailabilityZone=cloud.config.zones[0])["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume_id], WaiterConfig=FAST)
    _open(admin_browser, cloud, "/console/instances")
    ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device="/dev/sdf")
    ec2.get_waiter("volume_in_use").wait(VolumeIds=[volume_id], WaiterConfig=FAST)
    cell = f'tr[data-instance="{instance_id}"] .volumes'
    WebDriverWait(admin_browser, WAIT_S, poll_frequency=0.25).until(
        lambda b: f"/dev/sdf {volume_id} attached" in text(b, cell), message=f"{volume_id} attached")
    shot("instances-volume")
    _open(admin_browser, cloud, "/console/volumes")
    assert f"{instance_id} as /dev/sdf attached" in text(admin_browser, f'tr[data-volume="{volume_id}"]')
    ec2.detach_volume(VolumeId=volume_id)
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume_id], WaiterConfig=FAST)


def test_the_network_plan_shows_the_instances_addresses_and_rules(
        cloud: Cloud, admin_browser: WebDriver, launched: tuple[str, str, str],
        shot: Callable[[str], Path]) -> None:
    instance_id, _, node = launched
    described = cloud.ec2().describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    _open(admin_browser, cloud, "/console/network")
    lease = f'table.leases tr[data-instance="{instance_id}"]'
    assert node in _until(admin_browser, lease, f"{instance_id}'s lease")
    assert text(admin_browser, f"{lease} .private-ip") == described["PrivateIpAddress"]
    network = text(admin_browser, "table.networks tbody tr[data-vlan]")
    assert "default" in network and instance_id in network
    rules = text(admin_browser, "#rules")
    assert "*filter" in rules and "-A " in rules
    shot("network")


def test_a_trace_of_run_instances_shows_its_hops_across_clc_cc_and_nc(
        cloud: Cloud, admin_browser: WebDriver, launched: tuple[str, str, str],
        shot: Callable[[str], Path]) -> None:
    instance_id, request_id, node = launched
    # Found as a person finds it: in the list of recent requests, then followed.
    _open(admin_browser, cloud, "/console/trace")
    admin_browser.find_element(By.CSS_SELECTOR, f'tr[data-request="{request_id}"] a').click()
    WebDriverWait(admin_browser, WAIT_S).until(lambda b: request_id in b.current_url)
    assert "RunInstances" in text(admin_browser, "h1")
    assert texts(admin_browser, "th.lane-head")[:3] == ["CLC", "CC", "NC"]
    _until(admin_browser, 'td.step[data-service="nc"]', "the NC's steps")

    def steps(service: str) -> list[str]:
        return texts(admin_browser, f'td.step[data-service="{service}"]')
    assert any("RunInstances" in s for s in steps("clc"))
    # The CC's decision: which node, and why.
    placed = [s for s in steps("cc") if f"placed {instance_id} on {node}" in s]
    assert placed and "reason" in placed[0]
    assert any(instance_id in s for s in steps("nc"))
    hops = texts(admin_browser, "td.step .hop")
    assert "CLC → CC" in hops and "CC → NC" in hops
    # The CC's network plan for the new instance, with the iptables lines it added (the CLC
    # sends it a moment after the launch, gathering the changes of that moment: the page's
    # live refresh brings it).
    plan = WebDriverWait(admin_browser, WAIT_S).until(
        lambda b: [s for s in steps("cc") if "network plan v" in s])
    assert "rules" in plan[0]
    # The NC's libvirt call carries the domain it defined; a person opens it to read the XML
    # (and it stays open through the live refreshes).
    summary = 'td.step[data-service="nc"] details summary'
    _until(admin_browser, summary, "the domain XML")
    admin_browser.execute_script(
        "Array.from(document.querySelectorAll(arguments[0]))"
        ".find(s => s.innerText.trim() === 'domain_xml').click();", summary)
    seen = _refreshes(admin_browser)
    WebDriverWait(admin_browser, WAIT_S).until(lambda b: _refreshes(b) > seen, message="a live refresh")
    xml = texts(admin_browser, 'td.step[data-service="nc"] details[open] pre')
    assert any(f"<name>{instance_id}</name>" in x for x in xml)
    shot("trace")
