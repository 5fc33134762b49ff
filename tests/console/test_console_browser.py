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
from selenium.webdriver.remote.webelement import WebElement
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


def _until(browser: WebDriver, css: str, what: str) -> WebElement:
    """The element once the page (refreshed live) shows it."""
    return WebDriverWait(browser, WAIT_S, poll_frequency=0.25).until(  # type: ignore[no-any-return]
        lambda b: (found := b.find_elements(By.CSS_SELECTOR, css)) and found[0], message=what)


def test_topology_shows_every_service_and_node_with_its_state(
        cloud: Cloud, admin_browser: WebDriver, shot: Callable[[str], Path]) -> None:
    _open(admin_browser, cloud, "/console/topology")
    for service in ("clc", "walrus", "sc", "cc", "nc"):
        box = admin_browser.find_element(By.CSS_SELECTOR, f'.box[data-service="{service}"]')
        assert box.find_element(By.CSS_SELECTOR, ".state").text == "up", service
    names = [n.name for n in cloud.nodes().nodes]
    assert len(names) == 2
    for name in names:
        node = admin_browser.find_element(By.CSS_SELECTOR, f'.box[data-node="{name}"]')
        assert node.find_element(By.CSS_SELECTOR, ".state").text == "up"
    assert "cloud admin" in admin_browser.find_element(By.ID, "who").text
    shot("topology")


def test_an_instance_launched_with_boto3_appears_on_its_node(
        cloud: Cloud, admin_browser: WebDriver, launched: tuple[str, str, str],
        shot: Callable[[str], Path]) -> None:
    instance_id, _, node = launched
    _open(admin_browser, cloud, "/console/nodes")
    row = admin_browser.find_element(By.CSS_SELECTOR, f'tr[data-node="{node}"]')
    assert row.find_element(By.CSS_SELECTOR, f'li[data-instance="{instance_id}"]').text.startswith(instance_id)
    # m1.small books one core, 256 MB and its disk on that node: booked / max as the CC says.
    info = next(n for n in cloud.nodes().nodes if n.name == node)
    assert info.max and info.free
    cores = row.find_element(By.CSS_SELECTOR, "td.cores").text
    assert f"{info.max.cores - info.free.cores} / {info.max.cores}" in cores
    assert f"/ {info.max.memory_mb} MB" in row.find_element(By.CSS_SELECTOR, "td.memory").text
    assert f"/ {info.max.disk_gb} GB" in row.find_element(By.CSS_SELECTOR, "td.disk").text
    # The test cloud offers MAX_CORES=8 per node: on a host with fewer, overcommit shows.
    host_cores = os.cpu_count() or 1
    if host_cores < info.max.cores:
        assert f"overcommit ×{round(info.max.cores / host_cores, 2):g}" in cores
    else:
        assert "overcommit" not in cores
    shot("nodes")

    _open(admin_browser, cloud, "/console/instances")
    described = cloud.ec2().describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    row = admin_browser.find_element(By.CSS_SELECTOR, f'tr[data-instance="{instance_id}"]')
    assert "running" in row.text
    assert node in row.find_element(By.CSS_SELECTOR, ".node").text
    assert row.find_element(By.CSS_SELECTOR, ".private-ip").text == described["PrivateIpAddress"]
    assert row.find_element(By.CSS_SELECTOR, ".public-ip").text == described.get("PublicIpAddress", "—")
    shot("instances")


def test_a_volume_and_its_snapshot_appear_live_with_progress(
        cloud: Cloud, admin_browser: WebDriver, shot: Callable[[str], Path]) -> None:
    _open(admin_browser, cloud, "/console/volumes")
    before = int(admin_browser.find_element(By.TAG_NAME, "body").get_attribute("data-refreshes") or 0)
    ec2 = cloud.ec2()
    volume_id = ec2.create_volume(Size=1, AvailabilityZone=cloud.config.zones[0])["VolumeId"]
    # No reload: the page's own polling brings the new volume in.
    row = _until(admin_browser, f'tr[data-volume="{volume_id}"]', f"{volume_id} on the page")
    assert "1 GiB" in row.text
    assert int(admin_browser.find_element(By.TAG_NAME, "body").get_attribute("data-refreshes")) > before
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume_id], WaiterConfig=FAST)
    _until(admin_browser, f'tr[data-volume="{volume_id}"] .state-available', f"{volume_id} available")

    snapshot_id = ec2.create_snapshot(VolumeId=volume_id, Description="console test")["SnapshotId"]
    _until(admin_browser, f'tr[data-snapshot="{snapshot_id}"]', f"{snapshot_id} on the page")
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[snapshot_id], WaiterConfig=FAST)
    done = _until(admin_browser, f'tr[data-snapshot="{snapshot_id}"] .state-completed',
                  f"{snapshot_id} completed")
    row = admin_browser.find_element(By.CSS_SELECTOR, f'tr[data-snapshot="{snapshot_id}"]')
    assert done.text == "completed"
    assert row.find_element(By.CSS_SELECTOR, ".progress").text == "100%"
    assert volume_id in row.text and "console test" in row.text
    shot("volumes")


def test_the_network_plan_shows_the_instances_addresses_and_rules(
        cloud: Cloud, admin_browser: WebDriver, launched: tuple[str, str, str],
        shot: Callable[[str], Path]) -> None:
    instance_id, _, node = launched
    described = cloud.ec2().describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    _open(admin_browser, cloud, "/console/network")
    lease = _until(admin_browser, f'table.leases tr[data-instance="{instance_id}"]', f"{instance_id}'s lease")
    assert lease.find_element(By.CSS_SELECTOR, ".private-ip").text == described["PrivateIpAddress"]
    assert node in lease.text
    network = admin_browser.find_element(By.CSS_SELECTOR, "table.networks tbody tr[data-vlan]")
    assert "default" in network.text and instance_id in network.text
    rules = admin_browser.find_element(By.ID, "rules").text
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
    assert "RunInstances" in admin_browser.find_element(By.TAG_NAME, "h1").text
    lanes = [h.text for h in admin_browser.find_elements(By.CSS_SELECTOR, "th.lane-head")]
    assert lanes[:3] == ["CLC", "CC", "NC"]
    _until(admin_browser, 'td.step[data-service="nc"]', "the NC's steps")

    def steps(service: str) -> list[str]:
        return [s.text for s in admin_browser.find_elements(By.CSS_SELECTOR,
                                                           f'td.step[data-service="{service}"]')]
    assert any("RunInstances" in s for s in steps("clc"))
    # The CC's decision: which node, and why.
    placed = [s for s in steps("cc") if f"placed {instance_id} on {node}" in s]
    assert placed and "reason" in placed[0]
    assert any(instance_id in s for s in steps("nc"))
    hops = [h.text for h in admin_browser.find_elements(By.CSS_SELECTOR, "td.step .hop")]
    assert "CLC → CC" in hops and "CC → NC" in hops
    shot("trace")
