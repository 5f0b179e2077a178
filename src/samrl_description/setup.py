"""ament_python package samrl_description: builds with colcon on ROS 2 and with `pip install -e` without it."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'samrl_description'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    package_data={PACKAGE: ['py.typed', 'meshes/panda/*', 'urdf/*.urdf']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        ('share/' + PACKAGE + '/meshes/panda', glob(PACKAGE + '/meshes/panda/*')),
        ('share/' + PACKAGE + '/urdf', glob(PACKAGE + '/urdf/*.urdf')),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='samrl developers',
    maintainer_email='dev@samrl.invalid',
    description=open('package.xml').read().split('<description>')[1].split('</description>')[0],
    license='Apache-2.0',
    entry_points={'console_scripts': []},
)
