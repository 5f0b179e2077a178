"""write_json: the file a benchmark or diagnostic command leaves behind."""
import json

from samrl_common.reports import write_json


def test_write_json_makes_the_folder_and_says_where(tmp_path, capsys):
    path = tmp_path / 'a' / 'b' / 'figures.json'
    write_json(path, {'ms': [1.5, 2]})
    assert json.loads(path.read_text()) == {'ms': [1.5, 2]} and path.read_text().endswith('\n')
    assert str(path) in capsys.readouterr().out


def test_write_json_without_a_path_writes_nothing(tmp_path, capsys):
    write_json(None, {'x': 1})
    write_json('', {'x': 1})
    assert capsys.readouterr().out == '' and not any(tmp_path.iterdir())
