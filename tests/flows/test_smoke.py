from tests.helpers import OAuthFlow, make_client, make_user


def test_patient_launch_issues_tokens(app, base_url, http):
    make_user(app)
    client = make_client(app)
    flow = OAuthFlow(base_url, client, http)
    token = flow.run()
    assert token["token_type"] == "Bearer"
    assert token["patient"] == "p1"
    assert "refresh_token" in token and "id_token" in token
