"""Check environment: points the plugin at a TransLandSeg environment, runs it, reports the package version it has
and saves the path as the setting the other algorithms use."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputString,
    QgsProcessingParameterFile,
)

from .algorithm import TransLandSegAlgorithm
from .environment import EnvironmentProblem, check_environment, find_environment
from .settings import configured_path, save_path

ANY_FILE = "All files (*)"  # QGIS 3.22's default, "*.*", refuses bin/translandseg, which has no extension
HELP = "<br><br>".join((  # QGIS shows each newline of a help string: paragraphs are joined here
    "Sets the Python environment whose <code>translandseg</code> command the TransLandSeg algorithms run, after "
    "checking that it runs, and reports the translandseg-hf version it has.",
    "Give the environment's command (<code>ENV/bin/translandseg</code>, on Windows "
    "<code>ENV\\Scripts\\translandseg.exe</code>), its python, or the environment folder. Create one with "
    "<code>python -m venv ENV</code> and <code>ENV/bin/pip install translandseg-hf</code>: QGIS's own Python is "
    "never used for the model.",
))


class CheckEnvironment(TransLandSegAlgorithm):
    EXECUTABLE, VERSION, COMMAND = "EXECUTABLE", "VERSION", "COMMAND"

    NAME, DISPLAY_NAME, HELP = "checkenvironment", "Check environment", HELP

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterFile(self.EXECUTABLE, "translandseg command, python or environment "
                                                     "folder", defaultValue=configured_path() or None,
                                                     fileFilter=ANY_FILE))
        self.addOutput(QgsProcessingOutputString(self.VERSION, "translandseg-hf version"))
        self.addOutput(QgsProcessingOutputString(self.COMMAND, "Command the algorithms run"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        path = self.parameterAsFile(parameters, self.EXECUTABLE, context)
        try:
            environment = find_environment(path)
            version = check_environment(environment)
        except EnvironmentProblem as problem:
            raise QgsProcessingException(str(problem)) from problem
        save_path(path)
        command = " ".join(environment.command)
        feedback.pushInfo(f"translandseg-hf {version}: the TransLandSeg algorithms now run {command}")
        return {self.VERSION: version, self.COMMAND: command}
