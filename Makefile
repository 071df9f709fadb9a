# The README's commands. Each builds .venv when it is missing, so a fresh clone needs only Python 3.
# To use an existing environment instead: make notebooks PY=/path/to/python ENV_DEP=
PYTHON ?= python3
VENV ?= .venv
PY ?= $(VENV)/bin/python
STAMP := $(VENV)/.installed
ENV_DEP ?= $(STAMP)
NICE ?= nice -n 10

.PHONY: demo test lab env clean notebooks student book book-student figures nbgrader binder-url

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	mkdir -p $(VENV)/share/jupyter/lab/settings
	cp tools/jupyterlab-overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	touch $(STAMP)

env: $(ENV_DEP)

demo: $(ENV_DEP)
	$(PY) -m mint_teach demo

test: $(ENV_DEP)
	$(PY) -m pytest -q

lab: $(ENV_DEP)
	$(PY) -m jupyter lab notebooks/

# Re-execute every notebook in quick mode (or NB="04 05" for some), recording the hash of the
# mint_teach sources, the time and the kernel's peak memory in each notebook's metadata.
notebooks: $(ENV_DEP)
	$(NICE) $(PY) tools/notebooks.py execute $(NB)

# The student copy: solution cells removed, exercise outputs cleared (build/student/).
student: $(ENV_DEP)
	$(PY) tools/notebooks.py student --out build/student

# The course as a static website (Sphinx with MyST-NB and the book theme), from the committed
# outputs (no execution), readable offline. `make book`: build/site/, every solution folded
# behind a "Show solution" button, teacher pages included. `make book-student` (or
# `make book EDITION=student`): build/site-student/, no solutions, no teacher pages.
# tools/book.py replaces only a folder it built itself (or an empty one).
EDITION ?= full
book: $(ENV_DEP)
	$(PY) tools/book.py --edition $(EDITION) --out build/$(if $(filter student,$(EDITION)),site-student,site)

book-student: $(ENV_DEP)
	$(PY) tools/book.py --edition student --out build/site-student

# Every course figure as a PNG tagged with its true resolution (200 dpi where the notebook saves
# "retina" figures), from the saved outputs (no execution): build/figures/<notebook>/<cell>-<n>.png.
figures: $(ENV_DEP)
	$(PY) tools/figures.py --out build/figures

# The course as an nbgrader course folder (build/nbgrader/): each exercise an answer cell with
# a solution region and a locked checker cell; then nbgrader generate_assignment mint there.
nbgrader: $(ENV_DEP)
	$(PY) tools/nbgrader_meta.py --out build/nbgrader

# The mybinder.org addresses of this clone's GitHub remote: the student edition (written by
# postBuild) and the notebooks with solutions (nothing is printed for other remotes).
binder-url:
	@remote=$$(git remote get-url origin 2>/dev/null); \
	repo=$$(echo "$$remote" | sed -nE 's#^(git@github\.com:|https://github\.com/)([^/]+/[^/]+)$$#\2#p' | sed 's#\.git$$##'); \
	if [ -n "$$repo" ]; then echo "students (no solutions): https://mybinder.org/v2/gh/$$repo/HEAD?urlpath=lab/tree/student"; \
	echo "with solutions, for self-study: https://mybinder.org/v2/gh/$$repo/HEAD?urlpath=lab/tree/notebooks"; \
	else echo "origin is not a GitHub repository ($${remote:-none}); Binder needs one" >&2; exit 1; fi

clean:
	rm -rf $(VENV) build *.egg-info
