def test_put_get(s3, bucket):
    s3.put_object(Bucket=bucket, Key="a/b.txt", Body=b"hello", ContentType="text/plain",
                  Metadata={"color": "blue"})
    got = s3.get_object(Bucket=bucket, Key="a/b.txt")
    assert got["Body"].read() == b"hello"
    assert got["ContentType"] == "text/plain"
    assert got["Metadata"] == {"color": "blue"}
    listed = s3.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in listed["Contents"]] == ["a/b.txt"]
